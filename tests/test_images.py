"""Image maps: reading uploads safely, every pixel format, thumbnails, CLIP and the offline embedder.

What image maps share with text maps (building end to end, the caches, the manifest, clusters, the
name check, searching and the model check) is tested once for both kinds in test_pipeline.py and
test_search.py; the helpers below that make images are shared with them."""

from __future__ import annotations

import importlib.util
import io
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from kinds import COLOURS, colour_zip, encode, make_zip, square
from PIL import Image

from explorer import (
    ImageLimits,
    InputError,
    ModelError,
    ProjectionConfig,
    Workspace,
    build_map,
    load_embedder,
    open_image,
    read_image_table,
    read_images,
    search_map,
)
from explorer.cli import main
from explorer.embedders import ClipEmbedder, PixelFeatureEmbedder
from explorer.images import unsafe_member_reason
from explorer.thumbnails import thumbnail_data_uri

REPO = Path(__file__).resolve().parents[1]
SAMPLE_IMAGES = REPO / "sample_data" / "images"
PCA = ProjectionConfig(method="pca")
def png_header(width: int, height: int) -> bytes:
    """A PNG that claims the given size: a header alone, enough for Pillow to open it."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) \
        + chunk(b"IEND", b"")


# --- reading: folders become labels; bad files are skipped with a reason ---------------------------


def test_zip_folders_become_labels_and_sizes_are_recorded():
    data = make_zip({
        "cats/001.jpg": encode(square("red"), "JPEG"),
        "pets/dogs/002.png": encode(square("blue", size=(50, 20))),
        "top.webp": encode(square("green"), "WEBP"),
    })
    images = read_images(data, name="pets.zip")
    assert images.frame["file"].tolist() == ["cats/001.jpg", "pets/dogs/002.png", "top.webp"]
    assert images.frame["label"].tolist()[:2] == ["cats", "dogs"]
    assert images.frame["label"].isna().tolist() == [False, False, True]
    assert images.frame[["width", "height"]].values.tolist() == [[40, 32], [50, 20], [40, 32]]
    assert images.frame["format"].tolist() == ["JPEG", "PNG", "WEBP"]
    assert images.format == "zip" and images.skipped == []
    assert len(images.data) == len(images.thumbnails) == len(images.hashes) == 3
    assert images.images()[1].size == (50, 20) and images.images()[1].mode == "RGB"


def test_files_that_are_not_usable_images_are_skipped_with_their_reason():
    jpeg = encode(square("red", size=(64, 64)), "JPEG")
    data = make_zip({
        "ok/good.png": encode(square("green")),
        "ok/notes.txt": b"just some text, not an image",
        "ok/fake.jpg": b"\xff\xd8\xff\xe0" + b"\x00" * 40,
        "ok/truncated.jpg": jpeg[: len(jpeg) // 2],
        "ok/icon.ico": encode(Image.new("RGB", (16, 16)), "ICO"),
        "__MACOSX/ok/._good.png": b"\x00\x05\x16\x07",
    })
    images = read_images(data, name="mixed.zip")
    assert images.frame["file"].tolist() == ["ok/good.png"]
    reasons = dict(images.skipped)
    assert reasons["ok/notes.txt"] == ("not an image, or not in a readable format (JPEG, PNG, WebP, "
                                       "GIF, BMP and TIFF can be read)")
    assert "not an image" in reasons["ok/fake.jpg"] or "corrupt" in reasons["ok/fake.jpg"]
    assert reasons["ok/truncated.jpg"].startswith("corrupt or truncated image")
    assert reasons["ok/icon.ico"].startswith("unsupported image format ICO (JPEG, PNG")
    assert "hidden or system file" in reasons["__MACOSX/ok/._good.png"]
    assert "Skipped 5 file(s)" in images.notes[-1]


@pytest.mark.parametrize("size", [(20_000, 20_000), (10_000, 9_000)])
def test_decompression_bombs_are_refused_not_decoded(size):
    # 400 Mpx is past twice Pillow's limit (Pillow raises); 90 Mpx is past it once (Pillow only warns).
    images = read_images([("bomb.png", png_header(*size)), ("fine.png", encode(square("red")))])
    assert images.frame["file"].tolist() == ["fine.png"]
    (name, reason), = images.skipped
    assert name == "bomb.png" and "decompression bomb" in reason


def test_the_pixel_limit_is_configurable():
    images = read_images([("a.png", encode(square("red", size=(40, 40))))],
                         limits=ImageLimits(max_pixels=1_000))
    assert len(images) == 0
    assert "1,600 pixels" not in images.skipped[0][1]
    assert "40 x 40 pixels is more than the limit of 1,000" in images.skipped[0][1]


def test_zip_entries_that_climb_out_or_are_absolute_are_refused():
    good = encode(square("blue"))
    data = make_zip({"../evil.png": good, "/etc/abs.png": good, "C:\\win.png": good,
                     "a/../../b.png": good, "safe/ok.png": good})
    images = read_images(data, name="slip.zip")
    assert images.frame["file"].tolist() == ["safe/ok.png"]
    reasons = dict(images.skipped)
    assert set(reasons) == {"../evil.png", "/etc/abs.png", "C:\\win.png", "a/../../b.png"}
    assert all(r.startswith("refused:") for r in reasons.values())
    assert unsafe_member_reason("cats/..hidden.png") is None


def test_zip_file_count_and_unpacked_size_are_capped():
    data = colour_zip(2)
    with pytest.raises(InputError, match="6 files is more than the limit of 5"):
        read_images(data, name="many.zip", limits=ImageLimits(max_files=5))
    # 40 MB of zeros deflates to ~40 kB: the directory's declared size is what is checked.
    bomb = make_zip({"zeros.bmp": b"\0" * 40_000_000})
    assert len(bomb) < 100_000
    with pytest.raises(InputError, match="would unpack to 40.0 MB, more than the limit of 10 MB"):
        read_images(bomb, name="bomb.zip", limits=ImageLimits(max_total_bytes=10_000_000))


def test_a_damaged_zip_is_one_clear_error():
    data = colour_zip(1)
    broken = data[:20] + b"\xff" * 50 + data[70:]
    # Still a ZIP by its directory, but the members' compressed data are damaged.
    images = read_images(broken, name="broken.zip")
    assert len(images.skipped) >= 1
    assert any("cannot be unpacked" in r or "corrupt" in r or "not an image" in r
               for _, r in images.skipped)


def test_several_files_and_uploaded_file_objects():
    upload = io.BytesIO(encode(square("green"), "GIF"))
    upload.name = "leaf.gif"
    on_disk = SAMPLE_IMAGES / "7" / "7_0007.png"
    images = read_images([("sky.png", encode(square("blue"))), upload, on_disk])
    assert images.frame["file"].tolist() == ["sky.png", "leaf.gif", "7_0007.png"]
    assert images.frame["format"].tolist() == ["PNG", "GIF", "PNG"]
    assert images.source_name == "images" and images.format == "images"


def test_a_folder_reads_recursively_with_labels():
    images = read_images(SAMPLE_IMAGES)
    assert len(images) == 300 and images.skipped == []
    assert sorted(images.frame["label"].unique()) == [str(d) for d in range(10)]
    assert (images.frame["label"].value_counts() == 30).all()
    assert images.frame["file"].iloc[0].startswith("0/")


# --- pixel formats and orientation all come out as upright RGB -----------------------------------


def _cmyk_cyan() -> Image.Image:
    return Image.new("CMYK", (8, 8), (255, 0, 0, 0))


def _i16_grey() -> Image.Image:
    return Image.fromarray(np.full((8, 8), 32896, dtype=np.uint16))


def _transparent(mode: str) -> Image.Image:
    image = Image.new("RGBA", (8, 8), (200, 0, 0, 0))
    return image if mode == "RGBA" else image.convert(mode)


def _palette_with_transparency() -> Image.Image:
    image = Image.new("P", (8, 8), 1)
    image.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    image.info["transparency"] = 1
    return image


@pytest.mark.parametrize(("make", "fmt", "expected"), [
    (lambda: Image.new("L", (8, 8), 100), "PNG", (100, 100, 100)),
    (lambda: Image.new("1", (8, 8), 1), "BMP", (255, 255, 255)),
    (lambda: Image.new("LA", (8, 8), (0, 0)), "PNG", (255, 255, 255)),
    (lambda: _transparent("RGBA"), "PNG", (255, 255, 255)),
    (lambda: Image.new("RGBA", (8, 8), (0, 0, 200, 255)), "WEBP", (0, 0, 200)),
    (_palette_with_transparency, "PNG", (255, 255, 255)),
    (lambda: Image.new("P", (8, 8), 0), "GIF", (0, 0, 0)),
    (_cmyk_cyan, "JPEG", (0, 255, 255)),
    (_cmyk_cyan, "TIFF", (0, 255, 255)),
    (_i16_grey, "PNG", (128, 128, 128)),
    (_i16_grey, "TIFF", (128, 128, 128)),
    (lambda: Image.new("RGB", (8, 8), (10, 200, 30)), "BMP", (10, 200, 30)),
])
def test_every_mode_becomes_rgb_with_the_right_colour(make, fmt, expected):
    source = make()
    data = encode(source, fmt)
    image = open_image(data)
    assert image.mode == "RGB" and image.size == (8, 8)
    assert np.abs(np.asarray(image)[4, 4].astype(int) - expected).max() <= 6, (source.mode, fmt)


def test_a_16_bit_png_keeps_its_full_range():
    ramp = np.linspace(0, 65535, 64, dtype=np.uint16).reshape(8, 8)
    image = open_image(encode(Image.fromarray(ramp)))
    grey = np.asarray(image)[..., 0]
    assert grey.min() == 0 and grey.max() == 255


def test_an_animated_gif_gives_its_first_frame():
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    pixel = np.asarray(open_image(buffer.getvalue()))[4, 4]
    assert pixel[0] > 200 and pixel[2] < 50


def test_exif_rotation_is_applied_and_sizes_are_upright():
    # Red on the left, blue on the right; orientation 6 means "rotate 90 degrees clockwise to view".
    pixels = np.zeros((20, 40, 3), dtype=np.uint8)
    pixels[:, :20] = (255, 0, 0)
    pixels[:, 20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(Image.fromarray(pixels), "JPEG", exif=exif, quality=95)
    image = open_image(data)
    assert image.size == (20, 40)
    top, bottom = np.asarray(image)[5, 10], np.asarray(image)[35, 10]
    assert top[0] > 200 and top[2] < 60 and bottom[2] > 200 and bottom[0] < 60
    frame = read_images([("rotated.jpg", data)]).frame
    assert frame[["width", "height"]].values.tolist() == [[20, 40]]


def test_large_images_are_shrunk_for_embedding_and_thumbnails():
    data = encode(square("red", size=(1200, 600)), "JPEG")
    assert open_image(data, max_side=512).size == (512, 256)
    images = read_images([("big.jpg", data)])
    thumb = Image.open(io.BytesIO(images.thumbnails[0]))
    assert thumb.format == "WEBP" and thumb.size == (96, 48)
    assert thumbnail_data_uri(images.thumbnails[0]).startswith("data:image/webp;base64,")


# --- a table of paths beside a ZIP ----------------------------------------------------------------


def test_a_table_names_images_inside_a_zip():
    archive = colour_zip(2, top="shoot/")  # the ZIP wraps everything in one top folder
    table = (
        b"image,caption\n"
        b"red/red_0.png,a red one\n"
        b".\\blue\\blue_1.png,a blue one\n"
        b"GREEN/green_0.png,green in capitals\n"
        b"red/missing.png,not in the zip\n"
        b",no path at all\n"
    )
    images = read_image_table(table, archive, table_name="captions.csv", archive_name="photos.zip")
    assert images.path_column == "image"
    assert images.frame["caption"].tolist() == ["a red one", "a blue one", "green in capitals"]
    assert images.frame["label"].tolist() == ["red", "blue", "green"]
    # The table's paths stay as written; file says where each image was found in the ZIP.
    assert images.frame["image"].tolist() == ["red/red_0.png", ".\\blue\\blue_1.png", "GREEN/green_0.png"]
    assert images.frame["file"].tolist() == [
        "shoot/red/red_0.png", "shoot/blue/blue_1.png", "shoot/green/green_0.png"]
    assert dict(images.skipped) == {
        "row 4 (red/missing.png)": "not found in photos.zip",
        "row 5 (empty)": "no image path",
    }
    assert images.format == "table+zip"


def test_a_table_without_a_path_column_is_one_clear_error():
    with pytest.raises(InputError, match="No column of image paths"):
        read_image_table(b"title,year\nA,2001\n", colour_zip(1), table_name="t.csv")


# --- an image map with the offline embedder: thumbnails, labels, and text search by keyword ------


def test_a_pixel_map_keeps_thumbnails_and_labels_and_searches_text_by_keyword(workspace, tmp_path):
    archive = tmp_path / "colours.zip"
    archive.write_bytes(colour_zip(4))
    # No kind given: a ZIP is read as images.
    result = build_map(archive, model="pixels", projection=PCA, workspace=workspace)
    assert result.text_search == "keyword"
    assert "offline pixel embedder" in result.text_search_reason

    saved = workspace.open("colours")
    manifest = saved.manifest
    assert saved.kind == manifest["kind"] == "images" and manifest["model"] == "pixels"
    assert manifest["model_id"] == PixelFeatureEmbedder().model_id
    assert manifest["text_search"] == "keyword" and manifest["text_columns"] == ["file", "label"]
    assert manifest["images"]["label_column"] == "label" and manifest["images"]["skipped_count"] == 0
    assert saved.points["label"].tolist() == ["red"] * 4 + ["green"] * 4 + ["blue"] * 4
    assert np.allclose(np.linalg.norm(saved.embeddings, axis=1), 1.0, atol=1e-5)
    assert saved.has_thumbnails
    assert sorted(saved.thumbnails()) == list(range(12))
    assert Image.open(io.BytesIO(saved.thumbnails([5])[5])).size == (40, 32)

    hits = search_map(saved, "green")
    assert hits.mode == "keyword" and "file names and labels" in hits.reason
    assert saved.points["label"].iloc[hits.indices].tolist() == ["green"] * 4
    assert hits.top_scores.tolist() == [1.0] * 4
    assert len(search_map(saved, "purple").indices) == 0
    # An uploaded example that is not in the map finds the images of its colour.
    nearest = search_map(saved, image=encode(square("blue", seed=99)), k=4)
    assert nearest.mode == "example"
    assert saved.points["label"].iloc[nearest.indices].tolist() == ["blue"] * 4


def test_a_source_with_no_readable_image_is_one_clear_error(workspace):
    with pytest.raises(InputError, match="no readable image was found: notes.txt"):
        build_map([("notes.txt", b"hello")], kind="images", model="pixels", workspace=workspace)
    assert workspace.list() == []


@pytest.fixture
def no_clip(monkeypatch):
    """CLIP loading fails as it does offline with nothing cached, without importing torch."""
    def unavailable(self):
        raise ModelError(self._unavailable())

    monkeypatch.setattr(ClipEmbedder, "load", unavailable)


@pytest.mark.slow  # imports torch and sentence-transformers
def test_a_missing_clip_model_is_a_plain_model_error_or_falls_back(tmp_path):
    missing = "no-such-clip-model-anywhere"
    with pytest.raises(ModelError, match="is not on this machine and cannot be downloaded"):
        load_embedder(missing, kind="images")
    embedder = load_embedder(missing, kind="images", fallback=True)
    assert isinstance(embedder, PixelFeatureEmbedder)
    assert embedder.fallback_reason.startswith("CLIP could not be loaded")
    assert "file names and labels" in embedder.fallback_reason
    with pytest.raises(ModelError, match="could not be loaded as a sentence-transformers CLIP"):
        load_embedder(str(tmp_path), kind="images")


def test_cli_builds_a_zip_and_falls_back_when_clip_is_missing(no_clip, tmp_path, capsys):
    archive = tmp_path / "images.zip"
    archive.write_bytes(colour_zip(3))
    before = (archive.read_bytes(), archive.stat().st_mtime_ns)
    assert main(["build", str(archive), "--projection", "pca", "-q"]) == 0
    out, err = capsys.readouterr()
    fallback_lines = [line for line in err.splitlines() if "CLIP could not be loaded" in line]
    assert len(fallback_lines) == 1 and "offline pixel embedder" in fallback_lines[0]
    assert "images: 9  skipped: 0" in out and "text search: keyword" in out
    assert (archive.read_bytes(), archive.stat().st_mtime_ns) == before  # the upload is untouched

    assert main(["search", "images", "blue", "-k", "3"]) == 0
    out, _ = capsys.readouterr()
    assert out.splitlines()[0].startswith("search: keyword.")
    assert all("blue" in line for line in out.splitlines()[1:4])


def test_cli_refuses_a_named_clip_model_that_is_missing(no_clip, tmp_path, capsys):
    archive = tmp_path / "images.zip"
    archive.write_bytes(colour_zip(1))
    assert main(["build", str(archive), "--model", "no-such-clip-model-anywhere", "-q"]) == 2
    assert "is not on this machine" in capsys.readouterr().err


def test_cli_builds_a_folder_with_the_pixel_embedder(capsys):
    assert main(["build", str(SAMPLE_IMAGES), "--model", "pixels", "--projection", "pca", "-q",
                 "--name", "digits"]) == 0
    assert "images: 300  skipped: 0" in capsys.readouterr().out
    # Keywords are whole words: "7" finds the sevens, not 3_0217.png.
    assert main(["search", "digits", "7", "-k", "50"]) == 0
    hits = capsys.readouterr().out.splitlines()[1:]
    assert len(hits) == 30 and all(line.split()[-1] == "7" for line in hits)


def test_keyword_search_matches_words_and_their_longer_forms(workspace):
    files = [("cats/tabby_cat2.png", encode(square("red"))), ("dogs/puppy.png", encode(square("blue"))),
             ("birds/redstart.png", encode(square("green")))]
    saved = build_map(files, kind="images", name="pets", model="pixels", projection=PCA,
                      workspace=workspace).saved
    files_of = saved.points["file"]
    assert files_of.iloc[search_map(saved, "cat").indices].tolist() == ["cats/tabby_cat2.png"]
    assert files_of.iloc[search_map(saved, "dog").indices].tolist() == ["dogs/puppy.png"]
    assert len(search_map(saved, "re").indices) == 0  # too short to match a longer word
    both = search_map(saved, "tabby puppy")
    assert both.mode == "keyword"
    assert both.top_scores.tolist() == [0.5, 0.5]


def test_keyword_search_matches_number_words_and_numerals(workspace):
    files = [("7/a.png", encode(square("red"))), ("3/b.png", encode(square("blue"))),
             ("misc/seven.png", encode(square("green")))]
    saved = build_map(files, kind="images", name="digits", model="pixels", projection=PCA,
                      workspace=workspace).saved
    labels = saved.points["file"]
    # People type the word where the folder holds the digit, and the other way round.
    assert sorted(labels.iloc[search_map(saved, "seven").indices]) == ["7/a.png", "misc/seven.png"]
    assert sorted(labels.iloc[search_map(saved, "7").indices]) == ["7/a.png", "misc/seven.png"]
    assert labels.iloc[search_map(saved, "three").indices].tolist() == ["3/b.png"]


def test_cli_builds_a_table_beside_a_zip(tmp_path, capsys):
    (tmp_path / "photos.zip").write_bytes(colour_zip(2))
    (tmp_path / "photos.csv").write_text("path,caption\nred/red_0.png,sunset\nblue/blue_1.png,sea\n")
    assert main(["build", str(tmp_path / "photos.csv"), "--images", str(tmp_path / "photos.zip"),
                 "--model", "pixels", "--projection", "pca", "-q"]) == 0
    assert "images: 2" in capsys.readouterr().out
    assert main(["search", "photos", "sea"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split()[-2:] == ["blue/blue_1.png", "blue"]


# --- slow: the offline embedder separates the sample digits; a tiny CLIP end to end --------------


def _knn_accuracy():
    """benchmarks/metrics.py's k-NN accuracy: the one recipe the benchmarks report."""
    spec = importlib.util.spec_from_file_location("bench_metrics", REPO / "benchmarks" / "metrics.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module.knn_accuracy


@pytest.mark.slow
def test_the_pixel_embedder_map_separates_the_sample_digits(workspace):
    result = build_map(SAMPLE_IMAGES, kind="images", name="digits", model="pixels", workspace=workspace)
    saved = result.saved
    assert saved.manifest["projection"]["method_used"] == "umap"
    accuracy = _knn_accuracy()(saved.coords, saved.points["label"].to_numpy(), k=10)
    assert accuracy >= 0.8


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory) -> Path:
    """A 2-layer CLIP (hidden size 32, 30 px images) taught red/green/blue in a few steps, saved
    as a sentence-transformers folder: the real CLIP code path with no download."""
    import torch
    from sentence_transformers import SentenceTransformer
    from tokenizers import pre_tokenizers
    from transformers import CLIPConfig, CLIPModel, CLIPProcessor, CLIPTokenizer
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    # Byte-level characters alone (no merges) make a complete, if long-winded, CLIP vocabulary.
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {c: i for i, c in enumerate(alphabet)}
    vocab.update({c + "</w>": len(alphabet) + i for i, c in enumerate(alphabet)})
    bos, eos = len(vocab), len(vocab) + 1
    vocab.update({"<|startoftext|>": bos, "<|endoftext|>": eos})
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=32)
    layers = {"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 4}
    config = CLIPConfig(
        text_config={**layers, "vocab_size": len(vocab), "max_position_embeddings": 32,
                     "bos_token_id": bos, "eos_token_id": eos, "pad_token_id": eos},
        vision_config={**layers, "image_size": 30, "patch_size": 6},
        projection_dim=16,
    )
    processor = CLIPProcessor(
        image_processor=CLIPImageProcessorPil(size={"shortest_edge": 30},
                                              crop_size={"height": 30, "width": 30}),
        tokenizer=tokenizer,
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a model this small trains fastest on one thread, above all on a busy machine
    try:
        torch.manual_seed(0)
        model = CLIPModel(config)
        optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
        names = list(COLOURS)
        for step in range(80):
            batch = processor(text=names, images=[square(n, size=(30, 30), seed=step) for n in names],
                              return_tensors="pt", padding=True)
            loss = model(**batch, return_loss=True).loss
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        model.eval()
        raw = tmp_path_factory.mktemp("tiny-clip-hf")
        model.save_pretrained(raw)
        processor.save_pretrained(raw)
        folder = tmp_path_factory.mktemp("tiny-clip")
        SentenceTransformer(str(raw), device="cpu").save(str(folder))
    finally:
        torch.set_num_threads(threads)
    assert loss.item() < 0.1
    return folder


@pytest.mark.slow
def test_clip_embeds_texts_and_images_into_one_space(tiny_clip):
    embedder = load_embedder(str(tiny_clip), kind="images")
    assert isinstance(embedder, ClipEmbedder) and embedder.kinds == {"text", "images"}
    names = list(COLOURS)
    images = embedder.embed_images([square(n, seed=50 + i) for i, n in enumerate(names)], batch_size=2)
    texts = embedder.embed(names)
    assert images.shape == texts.shape == (3, embedder.dimension)
    assert np.allclose(np.linalg.norm(images, axis=1), 1.0, atol=1e-5)
    # Each colour word is closest to the square of that colour, across the two modalities.
    assert (np.argmax(texts @ images.T, axis=1) == np.arange(3)).all()


@pytest.mark.slow
def test_clip_map_reopens_with_thumbnails_and_searches_by_text_and_example(tiny_clip, tmp_path):
    archive = tmp_path / "colours.zip"
    archive.write_bytes(colour_zip(4, fmt="JPEG"))
    original = archive.read_bytes()
    workspace = Workspace(tmp_path / "home")
    result = build_map(archive, kind="images", model=str(tiny_clip), projection=PCA, workspace=workspace)
    assert result.text_search == "clip" and result.skipped == []
    assert archive.read_bytes() == original

    saved = Workspace(tmp_path / "home").open("colours")  # a fresh open: nothing carried in memory
    assert saved.kind == "images" and saved.manifest["text_search"] == "clip"
    assert saved.manifest["model"] == str(tiny_clip.resolve())
    thumbs = saved.thumbnails([0, 11])
    assert sorted(thumbs) == [0, 11]
    assert all(Image.open(io.BytesIO(t)).format == "WEBP" for t in thumbs.values())

    labels = saved.points["label"]
    for colour in COLOURS:
        hits = search_map(saved, colour, k=4)
        assert hits.mode == "semantic" and "CLIP" in hits.reason
        assert labels.iloc[hits.indices].tolist() == [colour] * 4, colour
    nearest = search_map(saved, image=encode(square("green", seed=77), "JPEG"), k=4)
    assert nearest.mode == "example"
    assert labels.iloc[nearest.indices].tolist() == ["green"] * 4

    # Without its CLIP model the same map still answers text queries, by keyword, and says why.
    workspace.update_manifest("colours", {"model": str(tmp_path / "gone")})
    hits = search_map(workspace.open("colours"), "red", k=4)
    assert hits.mode == "keyword" and "could not be loaded" in hits.reason
    assert labels.iloc[hits.indices].tolist() == ["red"] * 4


@pytest.mark.slow
def test_a_text_only_model_is_not_taken_for_clip():
    from explorer.embedders import bundled_model_path

    with pytest.raises(ModelError, match="is not a CLIP model"):
        load_embedder(str(bundled_model_path()), kind="images")
