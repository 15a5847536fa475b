"""The rules: what each event means for the mail, the courier, the preferences."""
