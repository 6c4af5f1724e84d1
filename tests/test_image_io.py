"""Bad and unusual inputs: each gives a clear ImageInputError or a correct 8-bit image, never a crash."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from conftest import make_image
from models.image_io import ImageInputError, load_image


def _png_header_only(w: int, h: int) -> bytes:
    """A PNG whose header claims w x h (a decompression-bomb shape) with almost no pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 10)) + chunk(b"IEND", b"")
    )


def _save(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def test_not_an_image(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("hello")
    with pytest.raises(ImageInputError, match="not an image"):
        load_image(p)


def test_truncated_file():
    data = _save(make_image(200, 200), "PNG")
    with pytest.raises(ImageInputError, match="truncated or corrupt"):
        load_image(data[: len(data) // 2])


def test_one_by_one_pixel():
    with pytest.raises(ImageInputError, match="1x1 px"):
        load_image(_save(Image.new("L", (1, 1)), "PNG"))


def test_huge_image_rejected_from_header():
    with pytest.raises(ImageInputError, match="400 MP"):
        load_image(_png_header_only(20000, 20000))
    with pytest.raises(ImageInputError, match="8000x8000"):  # above our limit, below PIL's bomb guard
        load_image(_png_header_only(8000, 8000))


def test_16bit_png_is_windowed_not_white():
    arr = np.linspace(0, 4000, 64 * 64).reshape(64, 64).astype(np.uint16)
    img, notes = load_image(_save(Image.fromarray(arr), "PNG"))
    out = np.asarray(img)
    assert img.mode == "L" and out.min() == 0 and out.max() == 255 and 100 < out.mean() < 155
    assert "windowed" in notes[0]


def test_rgba_composited_over_black():
    rgba = Image.new("RGBA", (32, 32), (200, 100, 50, 0))
    img, notes = load_image(_save(rgba, "PNG"))
    assert img.mode == "RGB" and np.asarray(img).max() == 0 and "transparency" in notes[0]


def test_cmyk_jpeg():
    img, _ = load_image(_save(Image.new("CMYK", (32, 32), (0, 255, 255, 0)), "JPEG"))
    r, g, b = np.asarray(img).reshape(-1, 3).mean(0)
    assert img.mode == "RGB" and r > 200 and g < 60 and b < 60


def test_palette_image():
    pal = make_image(40, 30).convert("P")
    img, _ = load_image(_save(pal, "PNG"))
    assert img.mode == "RGB" and img.size == (40, 30)


def test_exif_rotation_is_applied():
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    img, _ = load_image(_save(make_image(60, 30, mode="RGB"), "JPEG", exif=exif))
    assert img.size == (30, 60)


def test_plain_greyscale_and_arrays_pass_through():
    img, notes = load_image(_save(make_image(40, 30), "PNG"))
    assert img.mode == "L" and notes == []
    img, notes = load_image(np.zeros((20, 20), np.float32))
    assert img.mode == "L" and "windowed" in notes[0]
    with pytest.raises(ImageInputError):
        load_image(np.zeros((5, 20, 20, 2), np.uint8))


def make_dicom(path, arr: np.ndarray, photometric: str = "MONOCHROME2", window=None, slope=1.0, intercept=0.0):
    """A minimal, valid DICOM file (explicit VR little endian) with ``arr`` as its pixels, written with pydicom."""
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality = "US"
    ds.PhotometricInterpretation = photometric
    frames = arr.shape[0] if arr.ndim == 3 else 1
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.Rows, ds.Columns = arr.shape[-2:]
    ds.SamplesPerPixel, ds.PixelRepresentation = 1, 0
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    if window:
        ds.WindowCenter, ds.WindowWidth = window
    ds.PixelData = arr.astype(np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def test_dicom_uses_its_window_and_is_found_by_content(tmp_path):
    arr = np.tile(np.linspace(0, 4000, 64), (48, 1))
    path = make_dicom(tmp_path / "scan.bin", arr, window=(1000, 2000))  # not called .dcm: found by its preamble
    img, notes = load_image(path)
    a = np.asarray(img)
    assert img.mode == "L" and img.size == (64, 48)
    assert a[0, 0] == 0 and a[0, -1] == 255 and 100 < a[0, 16] < 160  # 1000 -> mid-grey; > 2000 saturates
    assert any("from the file" in n for n in notes)
    given, notes = load_image(path, window=(2000, 4000))  # the user's window wins
    assert np.asarray(given)[0, -1] == 255 and np.asarray(given)[0, 16] < 80 and "given" in " ".join(notes)


def test_dicom_monochrome1_rescale_and_multiframe(tmp_path):
    arr = np.stack([np.full((32, 32), v) for v in (100, 200, 300)])
    arr[:, :, :16] = 0
    path = make_dicom(tmp_path / "cine.dcm", arr, photometric="MONOCHROME1", slope=2.0, intercept=-10)
    img, notes = load_image(path, slice_index=2)
    assert "frame 2 of 3 (0-based)" in notes and "MONOCHROME1 inverted" in notes
    a = np.asarray(img)
    assert a[0, 0] > a[0, -1]  # inverted: low values bright
    with pytest.raises(ImageInputError, match="frame 5 does not exist"):
        load_image(path, slice_index=5)


def test_dicom_without_pixels_gives_a_message(tmp_path):
    path = make_dicom(tmp_path / "x.dcm", np.zeros((20, 20)))
    data = path.read_bytes()
    (tmp_path / "cut.dcm").write_bytes(data[: len(data) - 300])  # truncated pixel data
    with pytest.raises(ImageInputError, match="pixels cannot be read"):
        load_image(tmp_path / "cut.dcm")


def test_nifti_volume_gives_the_middle_axial_slice(tmp_path):
    import gzip

    import nibabel as nib

    vol = np.zeros((40, 30, 5), np.int16)
    for k in range(5):
        vol[:, :, k] = k * 100
    vol[:20, :, :] += 50  # left half of x brighter
    nii = nib.Nifti1Image(vol, np.eye(4))
    path = tmp_path / "brain.nii.gz"
    path.write_bytes(gzip.compress(nii.to_bytes()))
    img, notes = load_image(path)
    assert img.size == (40, 30) and "axial slice 2 of 5 (0-based)" in notes  # rot90: x across, y down
    img0, _ = load_image(path, slice_index=0, window=(25, 50))
    a = np.asarray(img0)
    assert a[:, :20].mean() > a[:, 20:].mean()
    plain = tmp_path / "slice.nii"
    plain.write_bytes(nib.Nifti1Image(vol[:, :, 0], np.eye(4)).to_bytes())
    assert load_image(plain)[0].size == (40, 30)
    (tmp_path / "bad.nii.gz").write_bytes(gzip.compress(b"not a nifti" * 50))
    with pytest.raises(ImageInputError, match="not a NIfTI"):
        load_image(tmp_path / "bad.nii.gz")


def test_16bit_tiff_is_windowed(tmp_path):
    arr = np.tile(np.linspace(0, 60000, 64, dtype=np.uint16), (32, 1))
    path = tmp_path / "xray.tif"
    Image.fromarray(arr).save(path)
    img, notes = load_image(path)
    assert img.mode == "L" and np.asarray(img)[0, -1] == 255 and np.asarray(img)[0, 0] == 0 and notes


def test_user_file_names_are_shortened_and_stripped_in_messages(tmp_path):
    from models.image_io import display_name

    assert display_name("/tmp/gradio/abc/../../etc/passwd") == "passwd"
    assert display_name("x" * 200 + ".png").startswith("x" * 28 + "...") and len(display_name("x" * 200)) <= 60
    assert "<" not in display_name("<script>.png")
    evil = tmp_path / "notes_<b>.txt"
    evil.write_text("hi")
    with pytest.raises(ImageInputError) as err:
        load_image(evil)
    assert "<b>" not in str(err.value)


def test_browser_viewable_tells_what_the_upload_box_can_draw(tmp_path):
    from PIL import Image

    from demo.uploads import browser_viewable

    Image.new("L", (8, 8)).save(tmp_path / "a.png")
    Image.new("L", (8, 8)).save(tmp_path / "a.tif")
    (tmp_path / "b.png").write_text("this is not an image")
    assert browser_viewable(tmp_path / "a.png")
    assert not browser_viewable(tmp_path / "a.tif") and not browser_viewable(tmp_path / "b.png")
