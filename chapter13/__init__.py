"""chapter13: tested implementations behind the notebooks of "Multimodal & Diffusion Models".

Modules, one per concept (the map with what each holds: README.md; the import floors: CONTRIBUTING.md):

- foundations: ``config``, ``cost``, ``attention``, ``guidance``, ``neuro``, ``book``
- math: ``data``, ``diffusion`` (schedules, the ``DiffusionModel`` base, the loss, samplers), ``unet``,
  ``fitting`` (the causal-inference observer fitted to responses)
- data sets and storage: ``captions``, ``synthetic``, ``checkpoints``
- models, measures and the loop: ``multimodal``, ``codelab``, ``audio``, ``hierarchy``, ``evaluate``,
  ``train``
- models built on models: ``temporal``, ``text2image``, ``toy``, ``plotting``; ``latent``
- the shipped checkpoints' recipes and registry: ``recipes``
- front ends: ``sample``, ``widgets``, ``exercises``
"""

__version__ = "0.1.0"
