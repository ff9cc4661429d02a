"""The scheduled sync: AIRUDDER's workflow APIs read back into the recorder."""
