"""chapter13: tested implementations behind the notebooks of "Multimodal & Diffusion Models".

Modules, one per concept (see README.md for the map): ``config``, ``data``, ``diffusion``, ``unet``,
``attention``, ``multimodal``, ``guidance``, ``latent``, ``temporal``, ``neuro``, ``train``,
``evaluate``, ``checkpoints``, ``book``, ``plotting``, ``widgets``.
"""

__version__ = "0.1.0"
