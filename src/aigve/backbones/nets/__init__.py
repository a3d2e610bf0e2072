"""Network definitions (plain ``nn.Module`` code, no weights) used by the neural extractors."""
