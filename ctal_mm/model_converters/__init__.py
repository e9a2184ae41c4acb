"""What the checkpoint converters of tools/model_converters/ share: the key mapping from the
CTAL reference's state dicts (and torchvision's Swin-V2) onto ctal_mm's models."""
