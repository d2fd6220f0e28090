"""The offline synthetic benchmark: languages, task generators, a tiny pretrained encoder."""
