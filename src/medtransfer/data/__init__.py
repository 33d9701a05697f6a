"""Data: sources that read the user's files, splits, transforms and tensor datasets."""

from medtransfer.data.dataset import ImageTensorDataset, load_images
from medtransfer.data.sources import (
    LabelledImages,
    Sample,
    Source,
    open_source,
    read_source,
)
from medtransfer.data.splits import DataSplit, make_split, training_subset
from medtransfer.data.transforms import Augmentation

__all__ = [
    "Augmentation", "DataSplit", "ImageTensorDataset", "LabelledImages", "Sample", "Source",
    "load_images", "make_split", "open_source", "read_source", "training_subset",
]
