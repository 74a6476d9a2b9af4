"""napari integration: every napari and Qt import of the project lives in this package."""
