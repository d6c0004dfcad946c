"""Re-identification data: synthetic generation, folder layouts and the torch Dataset."""
