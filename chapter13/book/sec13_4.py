"""Section 13.4 as printed: ``VideoUNet`` (13.4.1), ``AudioDiffusion`` (13.4.2) and
``consistency_loss`` (13.4.3).

The two networks are outlines ("# Additional layers...", "# ..."): their first layers are real,
``VideoUNet.forward`` has no body (the line we add raises ``NotImplementedError``) and
``AudioDiffusion`` has no ``forward``. ``consistency_loss`` is right: it differences along the frame
axis of the (B, C, F, H, W) layout and equals :func:`chapter13.temporal.consistency_loss`. The
notebook ``13.4-video-and-audio`` runs each next to :mod:`chapter13.temporal` and :mod:`chapter13.audio`.
"""

from chapter13.book.erratum import Erratum  # ch13: added - for the notes at the end
import torch.nn as nn  # ch13: added - the chapter imports it in 13.1.1

# ch13: added - from here to LISTINGS, the chapter's listings as printed

class VideoUNet(nn.Module):
    def __init__(self, channels=3, frames=16):
        super().__init__()
        # Spatio-temporal convolutions
        self.conv3d_1 = nn.Conv3d(channels, 64, kernel_size=(3, 3, 3), padding=(1, 1, 1))
        self.conv3d_2 = nn.Conv3d(64, 128, kernel_size=(3, 3, 3), padding=(1, 1, 1))
        # Additional layers...

    def forward(self, x, t, text_emb):
        # x: [B, C, F, H, W] - batch, channels, frames, height, width
        # Process video with temporal context
        # ...
        raise NotImplementedError("the chapter elides VideoUNet.forward ('# ...')")  # ch13: added - the print has no body here, and a def needs one


class AudioDiffusion(nn.Module):
    def __init__(self, channels=1, sample_rate=16000):
        super().__init__()
        # 1D convolutions for audio
        self.conv1d_1 = nn.Conv1d(channels, 64, kernel_size=3, padding=1)
        self.conv1d_2 = nn.Conv1d(64, 128, kernel_size=3, padding=1)
        # Additional layers...


def consistency_loss(frames_pred, frames_gt):
    """
    Compute both per-frame loss and temporal consistency loss
    """
    # Per-frame reconstruction loss
    frame_loss = nn.MSELoss()(frames_pred, frames_gt)

    # Temporal consistency: compare frame differences
    frame_diffs_pred = frames_pred[:, :, 1:] - frames_pred[:, :, :-1]
    frame_diffs_gt = frames_gt[:, :, 1:] - frames_gt[:, :, :-1]

    temporal_loss = nn.MSELoss()(frame_diffs_pred, frame_diffs_gt)

    return frame_loss + 0.5 * temporal_loss


# ch13: added - what running the listings above shows (chapter13.book.Erratum)

LISTINGS = {"VideoUNet": "13.4.1", "AudioDiffusion": "13.4.2", "consistency_loss": "13.4.3"}

NOTEBOOK = "13.4-video-and-audio"

ERRATA = (
    Erratum(
        section="13.4.1",
        listing="VideoUNet",
        kind="simplification",
        finding="An outline: two full 3 x 3 x 3 Conv3d layers (for channels=3: 5,248 + 221,312 "
        "parameters) and a forward without a body; frames=16 is accepted and never used.",
        why="A full 3-D kernel costs 27·C_in·C_out per voxel; published video diffusion models factorise "
        "it into a spatial 3 x 3 and a temporal layer (Ho et al. 2022, 'Video Diffusion Models', Sec. 3; "
        "Singer et al. 2022, Sec. 3.2; Blattmann et al. 2023): 9·C_in·C_out + 3·C_out² instead of "
        "27·C_in·C_out (12·C² against 27·C² for equal widths; 1.65x fewer for the print's 3 -> 64 -> 128), "
        "and the video model can then start from an image model.",
        package="chapter13.temporal.VideoUNet",
        notebook=NOTEBOOK,
    ),
    Erratum(
        section="13.4.2",
        listing="AudioDiffusion",
        kind="simplification",
        finding="An outline: two Conv1d layers (for channels=1: 256 + 24,704 parameters) and no forward, "
        "so calling it raises 'missing the required \"forward\" function'; sample_rate is never used.",
        why="A 1-D U-Net over the waveform needs a receptive field of at least a period of the lowest "
        "pitch; the package's network adds levels and attention at the bottom.",
        package="chapter13.audio.AudioDiffusion",
        notebook=NOTEBOOK,
    ),
    Erratum(
        section="13.4.3",
        listing="consistency_loss",
        kind="correct",
        finding="frames_pred[:, :, 1:] - frames_pred[:, :, :-1] differences along dim 2, the frame axis "
        "of the (B, C, F, H, W) layout; the value equals the package's consistency_loss to float "
        "precision.",
        why="Per-frame MSE plus 0.5 x the MSE of frame differences. It needs a target clip, so it is a "
        "training loss for reconstruction; on generated clips a penalty on differences alone would push "
        "towards a still image (the package's video_diffusion_loss applies it to the noise prediction).",
        package="chapter13.temporal.consistency_loss",
        notebook=NOTEBOOK,
    ),
)
