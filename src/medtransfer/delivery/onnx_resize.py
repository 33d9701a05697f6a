"""The exported graph as a deployer calls it: a decoded ``uint8`` image at its own size in, the task's outputs out.

:class:`NativeSizeNet` does inside one traceable module what ``predict`` does around the network: the channels the
model was trained on (:func:`~medtransfer.delivery.inputs.read_new_image`: ITU-R 601-2 luma for a gray model, a
gray channel repeated for an RGB one), the training resize (:func:`~medtransfer.data.transforms.resize_batch`:
bicubic with anti-aliasing, rounded to ``uint8``), the network, and, for per-pixel scores, the bilinear resize back
to the image's size that predict's masks use (:func:`~medtransfer.tasks.segmentation.mask_at`), then the task's
:meth:`~medtransfer.tasks.TaskWriter.delivered_outputs`. The graph's height and width are dynamic; a batch holds images
of one size.

The TorchScript exporter drops ``antialias`` from ``F.interpolate`` (it would write a plain bicubic ``Resize``), so
:func:`export_native_size` registers the ONNX ``Resize`` (opset 18) that reproduces PyTorch's anti-aliased bicubic;
each setting was checked against PyTorch with onnxruntime on up- and down-scaling of non-square images (the others
differ by up to 30 grey levels):

- ``cubic_coeff_a = -0.5``: PyTorch's anti-aliased bicubic uses Keys' a = -0.5 (as PIL does), not the -0.75 of its
  plain bicubic;
- ``antialias = 1``: the kernel is stretched by the scale when downscaling;
- ``exclude_outside = 1``: taps outside the image get no weight and the rest are renormalised, as PyTorch's are;
- ``coordinate_transformation_mode = pytorch_half_pixel``: ``align_corners=False``.

The pixels then agree with PyTorch's to within 1e-3 before rounding (float32 weights computed in another order),
which after rounding leaves about one pixel in 10,000 one grey level apart.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from medtransfer.data.transforms import resize_batch
from medtransfer.delivery.inputs import LUMA
from medtransfer.errors import ConfigError
from medtransfer.model.saved import SavedModel

#: the lowest opset whose ``Resize`` has ``antialias``
MIN_OPSET = 18
#: the largest difference from PyTorch's outputs an export may have on images that the graph resizes: a pixel one
#: grey level apart moves per-pixel probabilities of random images by up to 1e-3 (Kvasir-SEG model, 64 px), while
#: a wrong ``Resize`` setting moves them by far more (a deployer's PIL bicubic: 0.15 on BreastMNIST)
RESIZE_TOLERANCE = 1e-2
#: the ONNX ``Resize`` attributes that reproduce ``F.interpolate(mode="bicubic", antialias=True, align_corners=False)``
BICUBIC_AA = {"mode": "cubic", "cubic_coeff_a": -0.5, "antialias": 1, "exclude_outside": 1,
              "coordinate_transformation_mode": "pytorch_half_pixel"}


class NativeSizeNet(nn.Module):
    """The saved model as a function of a decoded ``uint8`` ``N×C×H×W`` batch (C 1 or 3, H and W the images' own):
    what ``predict`` gives for those images, at their size for per-pixel outputs."""

    def __init__(self, saved: SavedModel):
        super().__init__()
        self.net, self.task = saved.net, saved.task
        self.size, self.channels = int(saved.spec["input_size"]), int(saved.spec.get("channels") or 3)
        self.register_buffer("luma", torch.tensor(LUMA, dtype=torch.float64).view(1, 3, 1, 1), persistent=False)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        outputs = self.net(resize_batch(self.trained_channels(image), self.size))
        if outputs.dim() == 4:  # per-pixel scores at the input size: back to the image's, as predict's masks are
            outputs = F.interpolate(outputs.float(), size=image.shape[-2:], mode="bilinear", align_corners=False)
        return self.task.writer.delivered_outputs(outputs)

    def trained_channels(self, image: torch.Tensor) -> torch.Tensor:
        """1 or 3 channels to the model's: without a branch on the count, so one graph takes both (the luma of a
        gray pixel repeated three times is the pixel)."""
        rgb = image.expand(-1, 3, -1, -1)
        if self.channels == 3:
            return rgb
        return (rgb.double() * self.luma).sum(1, keepdim=True).round().clamp(0, 255).to(torch.uint8)


def _bicubic_aa(g, image, output_size, align_corners, scale_factors):
    """``aten::_upsample_bicubic2d_aa`` as an ONNX ``Resize`` to ``output_size`` (the leading axes kept)."""
    leading = g.op("Slice", g.op("Shape", image), g.op("Constant", value_t=torch.tensor([0])),
                   g.op("Constant", value_t=torch.tensor([2])))
    sizes = g.op("Concat", leading, output_size, axis_i=0)
    empty = g.op("Constant", value_t=torch.tensor([], dtype=torch.float32))
    return g.op("Resize", image, empty, empty, sizes, mode_s=BICUBIC_AA["mode"],
                cubic_coeff_a_f=BICUBIC_AA["cubic_coeff_a"], antialias_i=BICUBIC_AA["antialias"],
                exclude_outside_i=BICUBIC_AA["exclude_outside"],
                coordinate_transformation_mode_s=BICUBIC_AA["coordinate_transformation_mode"])


def export_native_size(module: NativeSizeNet, path: Path, opset: int, input_name: str, output_name: str) -> None:
    """Trace ``module`` into the ONNX file ``path``: batch, channels, height and width dynamic (height and width of
    the output too, when it is per pixel)."""
    if opset < MIN_OPSET:
        raise ConfigError(f"opset {opset}: the in-graph resize needs opset {MIN_OPSET} or later (Resize with "
                          f"antialias)")
    torch.onnx.register_custom_op_symbolic("aten::_upsample_bicubic2d_aa", _bicubic_aa, MIN_OPSET)
    example = torch.randint(0, 256, (2, 1, module.size + 7, module.size + 3), dtype=torch.uint8,
                            generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        per_pixel = module(example).dim() == 4
    axes = {0: "batch", 2: "height", 3: "width"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer warnings
        torch.onnx.export(module, (example,), str(path), dynamo=False, opset_version=opset,
                          input_names=[input_name], output_names=[output_name],
                          dynamic_axes={input_name: {**axes, 1: "channels"},
                                        output_name: axes if per_pixel else {0: "batch"}})


def graph_input(spec: dict, name: str) -> dict:
    """The sidecar's ``input``: the decoded image as it is."""
    gray = int(spec.get("channels") or 3) == 1
    return {"name": name, "dtype": "uint8", "layout": "NCHW", "shape": ["batch", "channels", "height", "width"],
            "channels": "gray (1) or RGB (3); the model was trained on " + ("gray" if gray else "RGB") + " images",
            "images": "one image, or several of the same height and width; any height and width"}


def graph_preprocessing(spec: dict) -> dict:
    """The sidecar's ``preprocessing``: what the caller does (decode only) and what the graph does."""
    size, gray = int(spec["input_size"]), int(spec.get("channels") or 3) == 1
    window = f" {spec['window']}" if spec.get("window") else " of the header"
    return {
        "caller": ["decode the image file to 8-bit gray or RGB (DICOM: rescale, then the VOI LUT or window" + window
                   + ", MONOCHROME1 inverted), at its own size: no resizing",
                   "give it as uint8 1×C×H×W (numpy: gray[None, None], or rgb.transpose(2, 0, 1)[None]); stack "
                   "only images of the same size"],
        "inside_the_graph": {
            "channels": ("RGB to gray by ITU-R 601-2 luma (0.299 R + 0.587 G + 0.114 B, rounded)" if gray else
                         "a gray channel repeated to RGB"),
            "resize": {"to": [size, size], "as": "training: PyTorch bicubic with anti-aliasing, aspect ratio not "
                       "kept, rounded to uint8", "onnx_resize": BICUBIC_AA},
            "normalisation": {"mean": spec.get("mean"), "std": spec.get("std"), "scale": "pixel / 255"},
            **({"temperature": spec.get("temperature")} if "temperature" in spec else {}),
        },
    }
