"""Section 13.5 as printed: ``simulate_cross_modal_binding`` (13.5.2) and ``hierarchical_sensory_model``
(13.5.3).

The McGurk "model" returns "da" for any congruence strictly between 0.3 and 0.7, whatever the
syllables are, with fixed weights 0.4 and 0.6, and its printed ``def`` line has no colon; the
hierarchical network's first linear layer fits only 3 x 32 x 32 inputs. The notebook
``13.5-neural-multimodal-integration`` runs both next to :mod:`chapter13.neuro` and
:mod:`chapter13.hierarchy`.
"""

from chapter13.book.erratum import Erratum  # ch13: added - for the notes at the end
import torch.nn as nn  # ch13: added - the chapter imports it in 13.1.1

# ch13: added - from here to LISTINGS, the chapter's listings as printed

def simulate_cross_modal_binding(visual_input, auditory_input, semantic_congruence):  # ch13: completed - the print has no ":"
    """
    Simulate cross-modal binding with the McGurk effect

    Parameters:
    - visual_input: Visual speech cue (e.g., lip movements for "ga")
    - auditory_input: Auditory speech cue (e.g., sound "ba")
    - semantic_congruence: How congruent the stimuli are (0-1)

    Returns:
    - Perceived output after cross-modal integration
    """
    # Simple model of superior temporal sulcus integration
    visual_weight = 0.4 # Visual influence
    auditory_weight = 0.6 # Auditory influence

    # Modulate influence by congruence
    if semantic_congruence < 0.5:
        # Less binding when stimuli don't match
        visual_weight *= semantic_congruence
        auditory_weight = 1 - visual_weight

    # Weighted integration (simplified)
    perceived_output = (
        visual_weight * visual_input +
        auditory_weight * auditory_input
    )

    # For McGurk effect, return illusory perception
    if 0.3 < semantic_congruence < 0.7:
        # Create illusory perception (e.g., "da" from visual "ga" + auditory "ba")
        perceived_output = "da" # Simplified illustration

    return perceived_output


def hierarchical_sensory_model():
    model = nn.Sequential(
        # Primary visual cortex (V1) - simple features
        nn.Conv2d(3, 64, kernel_size=3, padding=1),
        nn.ReLU(),

        # V2/V4 - more complex features
        nn.Conv2d(64, 128, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),

        # Inferotemporal cortex - object recognition
        nn.Conv2d(128, 256, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),

        # Flattening for higher levels
        nn.Flatten(),

        # Higher association areas - multimodal integration
        nn.Linear(256 * 8 * 8, 512),
        nn.ReLU(),

        # Decision outputs
        nn.Linear(512, 10)
    )
    return model


# ch13: added - what running the listings above shows (chapter13.book.Erratum)

LISTINGS = {"simulate_cross_modal_binding": "13.5.2", "hierarchical_sensory_model": "13.5.3"}

NOTEBOOK = "13.5-neural-multimodal-integration"

ERRATA = (
    Erratum(
        section="13.5.2",
        listing="simulate_cross_modal_binding",
        kind="fault",
        finding="As printed it does not parse (the def line has no colon). With the colon: any "
        "congruence strictly between 0.3 and 0.7 returns 'da', whatever the two syllables are; syllables "
        "as strings, as its docstring suggests, raise TypeError (0.4 * 'ga') before that branch; with "
        "numbers it returns a weighted number, not a percept.",
        why="The McGurk fusion is specific: auditory 'ba' with visual 'ga' is heard as 'da', the reverse "
        "pairing is not (McGurk & MacDonald 1976), and it happens on a share of trials that differs "
        "between people (Basu Mallick et al. 2015). Models predict a probability per response from the "
        "cues' reliabilities and the inferred common cause (Massaro 1998; Körding et al. 2007; Magnotti "
        "& Beauchamp 2017).",
        package="chapter13.neuro.mcgurk_responses",
        notebook=NOTEBOOK,
    ),
    Erratum(
        section="13.5.2",
        listing="simulate_cross_modal_binding",
        kind="fault",
        finding="The weights are fixed at 0.4 (vision) and 0.6 (audition); below congruence 0.5 the visual "
        "weight shrinks in proportion, a step at 0.5 with no model behind it.",
        why="Optimal integration weights each cue by its reliability, w_i proportional to 1/σ_i² (Ernst "
        "& Banks 2002), so the weights move with the noise in each cue.",
        package="chapter13.neuro.mle_combine",
        notebook=NOTEBOOK,
    ),
    Erratum(
        section="13.5.3",
        listing="hierarchical_sensory_model",
        kind="fault",
        finding="Linear(256 * 8 * 8, 512) fits only 3 x 32 x 32 inputs (two 2 x 2 poolings: 32 -> 8). "
        "MNIST's 1 x 28 x 28 digits fail at the first convolution, 3 x 28 x 28 inputs at the linear "
        "layer (256 * 7 * 7 features). It has 8,765,066 parameters, 8,389,120 of them in that one layer.",
        why="The flattened size follows from the input size; a global pooling (or computing it from a "
        "dummy input) makes the network size-agnostic.",
        package="chapter13.hierarchy.HierarchicalCNN",
        notebook=NOTEBOOK,
    ),
)
