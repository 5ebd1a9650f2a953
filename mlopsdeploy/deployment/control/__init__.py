"""The deploy's control-machine side: what is built, checked and probed from here."""
