"""Sessions -> model inputs: vocabulary (train only), event counts, encoding with de-duplication, augmentation."""
