"""The VBench dimensions against VBench's code (Vchitect/VBench 45e79ec) and DINO's (facebookresearch/dino 7c446df).

Neither package can run here (``vbench`` pins transformers 4.33 and decord; DINO's model comes from torch.hub), so
each reference below restates the upstream code read with the library's tools, line for line where it matters:
VBench's ``dino_transform`` / ``clip_transform`` (torchvision Compose on ``torch.Tensor(frames)``), the consistency
loop of ``subject_consistency.py`` (``F.normalize`` + ``F.cosine_similarity`` + ``max(0, .)`` per frame) and
``temporal_flickering.cal_score`` (``cv2.absdiff`` on float32 frames); DINO's ``interpolate_pos_encoding`` on timm's
ViT blocks (the same block definition DINO's file says it took from timm). Networks use seeded random weights in
tiny configurations, saved to files and loaded through aigve's loader. Tolerance: 1e-5 absolute.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from aigve.backbones.nets.dino_vit import DinoViT, dino_pos_embed
from aigve.metrics.vbench import consistency_terms

TOL = 1e-5


# ------------------------------------------------------------------------- restated references
def ref_dino_transform(frames: np.ndarray, n_px: int = 224) -> torch.Tensor:
    from torchvision import transforms
    from torchvision.transforms import Compose, Normalize, Resize

    t = Compose(
        [
            Resize(size=n_px, antialias=False),
            transforms.Lambda(lambda x: x.float().div(255.0)),
            Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
        ]
    )
    return t(torch.Tensor(frames).permute(0, 3, 1, 2))


def ref_clip_transform(frames: np.ndarray, n_px: int = 224) -> torch.Tensor:
    from torchvision import transforms
    from torchvision.transforms import CenterCrop, Compose, InterpolationMode, Normalize, Resize

    t = Compose(
        [
            Resize(n_px, interpolation=InterpolationMode.BICUBIC, antialias=False),
            CenterCrop(n_px),
            transforms.Lambda(lambda x: x.float().div(255.0)),
            Normalize((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)),
        ]
    )
    return t(torch.Tensor(frames).permute(0, 3, 1, 2))


def ref_interpolate_pos_encoding(
    pos_embed: torch.Tensor, patch: int, npatch: int, w: int, h: int
) -> torch.Tensor:
    """DINO's VisionTransformer.interpolate_pos_encoding (x.shape = B, nc, w, h)."""
    N = pos_embed.shape[1] - 1
    if npatch == N and w == h:
        return pos_embed
    class_pos_embed = pos_embed[:, 0]
    patch_pos_embed = pos_embed[:, 1:]
    dim = pos_embed.shape[-1]
    w0, h0 = w // patch + 0.1, h // patch + 0.1
    patch_pos_embed = torch.nn.functional.interpolate(
        patch_pos_embed.reshape(1, int(math.sqrt(N)), int(math.sqrt(N)), dim).permute(0, 3, 1, 2),
        scale_factor=(w0 / math.sqrt(N), h0 / math.sqrt(N)),
        mode="bicubic",
    )
    patch_pos_embed = patch_pos_embed.permute(0, 2, 3, 1).view(1, -1, dim)
    return torch.cat((class_pos_embed.unsqueeze(0), patch_pos_embed), dim=1)


def ref_dino_forward(vit, x: torch.Tensor) -> torch.Tensor:
    """DINO's prepare_tokens + forward on a timm VisionTransformer's modules."""
    _, _, w, h = x.shape
    tok = vit.patch_embed.proj(x).flatten(2).transpose(1, 2)  # DINO's PatchEmbed.forward (remainder dropped)
    tok = torch.cat((vit.cls_token.expand(x.shape[0], -1, -1), tok), dim=1)
    tok = tok + ref_interpolate_pos_encoding(vit.pos_embed, 16, tok.shape[1] - 1, w, h)
    for blk in vit.blocks:
        tok = blk(tok)
    return vit.norm(tok)[:, 0]


def ref_consistency(features: torch.Tensor) -> tuple[float, int]:
    """The loop of subject_consistency() / background_consistency() for one video: (video_sim, cnt)."""
    video_sim, cnt = 0.0, 0
    former = first = None
    for i in range(len(features)):
        f = F.normalize(features[i].unsqueeze(0), dim=-1, p=2)
        if i == 0:
            first = f
        else:
            sim_pre = max(0.0, F.cosine_similarity(former, f).item())
            sim_fir = max(0.0, F.cosine_similarity(first, f).item())
            video_sim += (sim_pre + sim_fir) / 2
            cnt += 1
        former = f
    return video_sim, cnt


def ref_flicker(frames_bgr: list[np.ndarray]) -> float:
    import cv2

    maes = [
        np.mean(cv2.absdiff(np.array(a, dtype=np.float32), np.array(b, dtype=np.float32)))
        for a, b in zip(frames_bgr[:-1], frames_bgr[1:], strict=True)
    ]
    return (255.0 - np.mean(np.array(maes)).item()) / 255.0


# ------------------------------------------------------------------------- fixtures
def tiny_timm_vit(seed: int = 0):
    timm = pytest.importorskip("timm")
    torch.manual_seed(seed)
    vit = timm.models.vision_transformer.VisionTransformer(
        img_size=224, patch_size=16, embed_dim=128, depth=2, num_heads=2, num_classes=0,
        qkv_bias=True, dynamic_img_size=True,
    )  # fmt: skip
    with torch.no_grad():  # timm zero-inits pos_embed's class part etc.: make every tensor informative
        for p in vit.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return vit.eval()


def save_dino(vit, path: Path) -> Path:
    keep = {k: v for k, v in vit.state_dict().items() if not k.startswith(("head", "fc_norm"))}
    torch.save(keep, path)
    return path


@pytest.fixture(scope="module")
def dino_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, Path]:
    vit = tiny_timm_vit(0)
    return vit, save_dino(vit, tmp_path_factory.mktemp("dino") / "tiny_dino.pth")


def frames_hw(t: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (1, h, w, 3)).astype(np.int64)
    steps = rng.integers(-25, 26, (t, h, w, 3)).cumsum(axis=0)
    return np.clip(base + steps, 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------- DINO / subject consistency
def test_transforms_equal_vbenchs() -> None:
    from aigve.vbench.transforms import clip_transform, dino_transform

    fr = frames_hw(3, 90, 160, seed=3)
    assert torch.allclose(dino_transform(fr), ref_dino_transform(fr), atol=1e-6, rtol=0)
    assert dino_transform(fr).shape == (3, 3, 224, 398)  # non-square, no crop
    assert torch.allclose(clip_transform(fr), ref_clip_transform(fr), atol=1e-6, rtol=0)


@pytest.mark.parametrize("hw", [(224, 398), (240, 224), (224, 224), (64, 96)])
def test_dino_pos_embed_is_dinos_not_timms(hw: tuple[int, int]) -> None:
    torch.manual_seed(1)
    pe = torch.randn(1, 14 * 14 + 1, 32)
    h, w = hw
    ours = dino_pos_embed(pe, 16, h, w)
    ref = ref_interpolate_pos_encoding(pe, 16, (h // 16) * (w // 16), h, w)
    assert torch.equal(ours, ref)
    if h != w:
        from timm.layers import resample_abs_pos_embed

        timm_pe = resample_abs_pos_embed(pe, [h // 16, w // 16], num_prefix_tokens=1)
        assert (timm_pe - ours).abs().max() > 1e-4  # the reason DINO's rule is reproduced


def test_dino_network_matches_reference_on_vbench_frames(dino_file) -> None:
    vit, path = dino_file
    from aigve.backbones.nets.dino_vit import config_from_state
    from aigve.weights.load import load_state_dict

    state = load_state_dict(path)
    net = DinoViT(**config_from_state(state))
    net.load_state_dict(state, strict=True)
    x = ref_dino_transform(frames_hw(3, 120, 200, seed=4))
    with torch.no_grad():
        assert torch.allclose(net.eval()(x), ref_dino_forward(vit, x), atol=TOL, rtol=0)


def test_subject_consistency_extractor_and_metric_match_vbench(dino_file) -> None:
    from aigve.backbones.dino import DinoExtractor
    from aigve.metrics.vbench import VBenchSubjectConsistency
    from aigve.types import Entry

    vit, path = dino_file
    fr = frames_hw(6, 96, 128, seed=5)
    ext = DinoExtractor(weights=str(path), batch_size=4)
    feats = ext.extract(fr)
    with torch.no_grad():
        ref_feats = torch.cat([ref_dino_forward(vit, img.unsqueeze(0)) for img in ref_dino_transform(fr)])
    assert np.abs(feats - ref_feats.numpy()).max() < TOL
    # batch-size independence and determinism
    again = DinoExtractor(weights=str(path), batch_size=1).extract(fr)
    assert np.abs(again - feats).max() < 1e-6
    video_sim, cnt = ref_consistency(ref_feats)
    m = VBenchSubjectConsistency(weights=str(path))
    out = m.score(Entry("v", Path("v.mp4")), {"features": feats})
    assert out["vbench_subject_consistency"] == pytest.approx(video_sim / cnt, abs=TOL)
    assert out["vbench_subject_consistency_frames"] == cnt == 5


def test_consistency_terms_match_vbench_loop_with_negative_cosines() -> None:
    rng = np.random.default_rng(7)
    f = rng.standard_normal((9, 16)).astype(np.float32)
    video_sim, cnt = ref_consistency(torch.from_numpy(f))
    terms = consistency_terms(f)
    assert terms.size == cnt and terms.sum() == pytest.approx(video_sim, abs=1e-6)


# ------------------------------------------------------------------------- CLIP / background consistency
def test_clip_vbench_backend_matches_vbench_preprocessing(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    from transformers import CLIPModel

    from aigve.backbones.clip import ClipExtractor
    from aigve.metrics.vbench import VBenchBackgroundConsistency
    from tests.backbones.vl_tiny import make_tiny_clip

    d = make_tiny_clip(tmp_path / "clip", seed=2, image_size=224)
    fr = frames_hw(5, 100, 150, seed=6)
    ext = ClipExtractor(batch_size=2, **VBenchBackgroundConsistency(weights=str(d)).extractor_options())
    ours = ext.extract(fr)
    ref_model = CLIPModel.from_pretrained(str(d)).eval()
    with torch.no_grad():
        out = ref_model.get_image_features(pixel_values=ref_clip_transform(fr))
    ref = out if isinstance(out, torch.Tensor) else out.pooler_output
    assert np.abs(ours - ref.numpy()).max() < TOL
    video_sim, cnt = ref_consistency(ref)
    got = consistency_terms(ours)
    assert got.mean() == pytest.approx(video_sim / cnt, abs=TOL)


# ------------------------------------------------------------------------- temporal flickering
def test_temporal_flickering_matches_cal_score(make_video) -> None:
    from aigve.backbones.classic import FrameAbsDiff
    from aigve.metrics.vbench import VBenchTemporalFlickering
    from aigve.types import Entry
    from aigve.video.decode import decode_video

    fr = frames_hw(7, 48, 64, seed=8)
    path = make_video("flick.mp4", fr)
    decoded = decode_video(path).frames
    bgr = [f[..., ::-1].copy() for f in decoded]  # VBench reads BGR with OpenCV
    diffs = FrameAbsDiff().extract(decoded)
    out = VBenchTemporalFlickering().score(Entry("v", path), {"absdiff": diffs})
    assert out["vbench_temporal_flickering"] == pytest.approx(ref_flicker(bgr), abs=TOL)


# ------------------------------------------------------------------------- CLIP / appearance style
def ref_clip_transform_image(n_px: int = 224):
    from torchvision.transforms import CenterCrop, Compose, InterpolationMode, Normalize, Resize, ToTensor

    return Compose(
        [
            Resize(n_px, interpolation=InterpolationMode.BICUBIC, antialias=False),
            CenterCrop(n_px),
            ToTensor(),
            Normalize((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)),
        ]
    )


def test_appearance_style_matches_vbench_loop(tmp_path: Path) -> None:
    """appearance_style(): per frame ``clip_model(image, text)`` -> ``logits_per_text[0][0] / 100``; the video's
    value is their mean and the dimension is frame-weighted. The tiny model's logit scale (exp 3.2 ~ 24.5) is not
    ln 100, so the scale is exercised."""
    pytest.importorskip("transformers")
    from PIL import Image
    from transformers import CLIPModel, CLIPProcessor

    from aigve.metrics.vbench import VBenchAppearanceStyle
    from aigve.types import Entry
    from tests.backbones.staged import staged_score
    from tests.backbones.vl_tiny import make_tiny_clip

    d = make_tiny_clip(tmp_path / "clip", seed=4, image_size=224, logit_scale=3.2)
    fr = frames_hw(4, 90, 120, seed=9)
    style = "oil painting of the red car"
    entry = Entry("v", Path("v.mp4"), prompt="a car", extra={"appearance_style": style})
    from aigve.backbones.clip import ClipExtractor

    metric = VBenchAppearanceStyle(weights=str(d))
    (req,) = metric.effective_requests()
    ext = ClipExtractor(batch_size=3, **dict(req.options))
    got = staged_score(metric, entry, ext.extract(fr))
    model = CLIPModel.from_pretrained(str(d)).eval()
    ids = CLIPProcessor.from_pretrained(str(d)).tokenizer([style], return_tensors="pt")["input_ids"]
    tf = ref_clip_transform_image(224)
    cur = []
    with torch.no_grad():
        for a in fr:
            image = tf(Image.fromarray(a)).unsqueeze(0)
            logits_per_text = model(input_ids=ids, pixel_values=image).logits_per_text
            cur.append(float(logits_per_text[0][0]) / 100)
    assert got["vbench_appearance_style"] == pytest.approx(float(np.mean(cur)), abs=TOL)
    assert got["vbench_appearance_style_frames"] == 4
    from aigve.vbench.transforms import clip_transform_image

    ref_pix = torch.stack([tf(Image.fromarray(a)) for a in fr])
    assert torch.allclose(clip_transform_image(fr), ref_pix, atol=1e-6, rtol=0)


def test_appearance_style_without_style_text_is_a_per_video_error(make_video, tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    from aigve.data.dataset import Dataset
    from aigve.engine import Engine, RunConfig
    from aigve.types import Entry
    from tests.backbones.vl_tiny import make_tiny_clip

    d = make_tiny_clip(tmp_path / "clip", seed=4)
    a = make_video("a.mp4", frames_hw(3, 32, 32, seed=1))
    b = make_video("b.mp4", frames_hw(3, 32, 32, seed=2))
    ds = Dataset(
        name="s",
        entries=[Entry("a", a, extra={"appearance_style": "watercolor painting"}), Entry("b", b)],
    )
    cfg = RunConfig(
        metrics=["vbench_appearance_style"],
        metric_options={"vbench_appearance_style": {"weights": str(d)}},
        cache_dir=tmp_path / "c",
        bootstrap=0,
        progress=False,
    )
    res = Engine(ds, cfg).run()
    errs = {r.video_id: r.error for r in res.records if r.error}
    assert set(errs) == {"b"} and "appearance_style" in errs["b"]
    assert res.value("vbench_appearance_style") is not None


# ------------------------------------------------------------------------- CLIP L/14 + LAION head / aesthetic quality
def test_aesthetic_quality_matches_laion_aesthetic(tmp_path: Path) -> None:
    """laion_aesthetic(): clip_transform(224) frames -> encode_image -> F.normalize -> Linear -> /10, mean over
    frames (a tiny CLIP stands in for ViT-L/14, so the head is Linear(projection_dim, 1) here)."""
    pytest.importorskip("transformers")
    from transformers import CLIPModel

    from aigve.backbones.clip import ClipExtractor
    from aigve.backbones.vbench import VBenchAestheticScorer
    from aigve.metrics.vbench import VBenchAestheticQuality
    from aigve.types import Entry
    from tests.backbones.staged import staged_score
    from tests.backbones.vl_tiny import make_tiny_clip

    d = make_tiny_clip(tmp_path / "clip", seed=6, image_size=224)
    dim = int(CLIPModel.from_pretrained(str(d)).config.projection_dim)
    torch.manual_seed(11)
    head = torch.nn.Linear(dim, 1)
    torch.save(head.state_dict(), tmp_path / "sa_head.pth")
    metric = VBenchAestheticQuality(weights=str(d), head_weights=str(tmp_path / "sa_head.pth"))
    scorer = VBenchAestheticScorer(**dict(metric.effective_requests()[0].options))
    up_name, up_opts = scorer.upstream()
    assert up_name == "clip" and up_opts["model"] == "clip_vit_l14" and up_opts["image_backend"] == "vbench"
    fr = frames_hw(5, 100, 140, seed=12)
    feats = ClipExtractor(batch_size=2, **up_opts).extract(fr)
    got = staged_score(metric, Entry("v", Path("v.mp4")), feats, scorer=scorer)
    model = CLIPModel.from_pretrained(str(d)).eval()
    with torch.no_grad():
        out = model.get_image_features(pixel_values=ref_clip_transform(fr))
        emb = out if isinstance(out, torch.Tensor) else out.pooler_output
        ref = (head(F.normalize(emb.float(), dim=-1, p=2)).squeeze(-1) / 10).mean().item()
    assert got["vbench_aesthetic_quality"] == pytest.approx(ref, abs=TOL)
