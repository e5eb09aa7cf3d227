"""Drop-in modules with other libraries' names and layouts (``pycocotools_mask``)."""
