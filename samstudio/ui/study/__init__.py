"""The participant's side of a rating study (paper §E, §G): the rating window, the
participant dialog and the entry points (`launch`)."""
