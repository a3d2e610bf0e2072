"""Judges: vision-language models that read the prompt (endpoint or local) and the methods that ask them."""
