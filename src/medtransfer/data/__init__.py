"""Data: sources that read the user's files, splits, transforms and tensor datasets."""

from medtransfer.data.dataset import ImageTensorDataset, load_images, load_masks
from medtransfer.data.sources import (
    ImageSet,
    LabelledImages,
    MaskedImages,
    Sample,
    Source,
    open_source,
    read_source,
)
from medtransfer.data.splits import DataSplit, make_split, training_subset
from medtransfer.data.transforms import Augmentation

__all__ = [
    "Augmentation", "DataSplit", "ImageSet", "ImageTensorDataset", "LabelledImages", "MaskedImages", "Sample", "Source",
    "load_images", "load_masks", "make_split", "open_source", "read_source",
    "training_subset",
]
