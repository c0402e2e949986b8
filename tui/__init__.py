"""The lorakit CLI and Textual app: thin clients over the stage packages."""
