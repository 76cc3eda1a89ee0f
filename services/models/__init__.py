"""Model loading shared by the components: the offline sentence encoder."""
