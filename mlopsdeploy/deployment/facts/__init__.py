"""pyinfra facts about the deployed app: read so that the deploy repairs instead of reinstalls."""
