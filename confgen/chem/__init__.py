"""Chemistry bottom layer: quantum-chemical and force-field helpers that import nothing from the layers above."""
