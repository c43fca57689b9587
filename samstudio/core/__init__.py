"""Qt-free core: images, masks, formats, the annotation document and its store."""
