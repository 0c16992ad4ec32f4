"""The Textual app: screens and widgets render state and post messages."""
