"""Exchange formats: COCO instances, SA-1B per-image JSON, labelme."""
