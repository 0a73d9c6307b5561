"""Section 13.5 listings as printed in the chapter, made runnable and otherwise unchanged.

- :func:`simulate_cross_modal_binding` (13.5.2): the McGurk "model". Use
  :func:`chapter13.neuro.mcgurk_responses` and :func:`chapter13.neuro.causal_inference_posterior`.
- :func:`hierarchical_sensory_model` (13.5.3): the V1 -> IT network. Use
  :class:`chapter13.hierarchy.HierarchicalCNN`.

The notebook ``13.5-neural-multimodal-integration.ipynb`` runs them beside the package's models.
"""

from torch import nn


def simulate_cross_modal_binding(visual_input, auditory_input, semantic_congruence=1.0):
    """
    Simulate cross-modal binding with the McGurk effect

    Parameters:
    - visual_input: Visual speech cue (e.g., lip movements for "ga")
    - auditory_input: Auditory speech cue (e.g., sound "ba")
    - semantic_congruence: How congruent the stimuli are (0-1)

    Returns:
    - Perceived output after cross-modal integration

    What is wrong with it (the package's replacement: :mod:`chapter13.neuro`):

    1. The weights are fixed at 0.4 (vision) and 0.6 (audition). Optimal integration weights each cue
       by its reliability, w_i proportional to 1 / sigma_i^2 (Ernst & Banks 2002;
       :func:`~chapter13.neuro.mle_combine`), so they change with noise, viewing angle, and so on.
    2. The illusion is hard-coded: any congruence strictly between 0.3 and 0.7 returns "da",
       whatever the two syllables are, and nothing else ever does. The McGurk fusion is an
       *incongruent* stimulus (auditory "ba" + visual "ga") perceived as "da"; the reverse pairing
       (auditory "ga" + visual "ba") is not (McGurk & MacDonald 1976). Binding should follow from
       inferring whether the two signals share a cause (Körding et al. 2007; Magnotti & Beauchamp
       2017): :func:`~chapter13.neuro.mcgurk_responses`.
    3. Below 0.5 the visual weight shrinks in proportion to congruence, a step change at 0.5 with no
       model behind it, and the output jumps between a number and a string.
    4. With the inputs its docstring suggests (strings such as "ga" and "ba") the weighted sum raises
       ``TypeError`` before the "da" branch is reached; with numbers it returns a number that is not
       a syllable. Perception is a probability over responses, which the data report (fusion rates
       of 17 % to 58 % across stimuli and 0 % to 100 % across people; Basu Mallick et al. 2015).
    """
    # Simple model of superior temporal sulcus integration
    visual_weight = 0.4  # Visual influence
    auditory_weight = 0.6  # Auditory influence

    # Modulate influence by congruence
    if semantic_congruence < 0.5:
        # Less binding when stimuli don't match
        visual_weight *= semantic_congruence
        auditory_weight = 1 - visual_weight

    # Weighted integration (simplified)
    perceived_output = visual_weight * visual_input + auditory_weight * auditory_input

    # For McGurk effect, return illusory perception
    if 0.3 < semantic_congruence < 0.7:
        # Create illusory perception (e.g., "da" from visual "ga" + auditory "ba")
        perceived_output = "da"  # Simplified illustration

    return perceived_output


def hierarchical_sensory_model():
    """The chapter's 13.5.3 network, V1 -> V2/V4 -> IT -> association -> decision.

    What is wrong with it (the package's replacement: :class:`chapter13.hierarchy.HierarchicalCNN`):
    the first linear layer hard-codes ``256 * 8 * 8`` inputs, which is right only for 3-channel
    32x32 images (two 2x2 poolings: 32 -> 8). On MNIST's 1x28x28 digits the first convolution
    fails (1 channel, not 3), and on 3x28x28 inputs the flattened size is ``256 * 7 * 7`` and the
    linear layer raises a shape error. With 64/128/256 channels and 512 association units it also
    has 8.8 million parameters (35 MB), most of them in that one linear layer.
    """
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
        nn.Linear(512, 10),
    )
    return model
