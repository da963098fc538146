"""diffusers' SanaPipeline on the shipped models/tiny-scenes, as its darkroom.json says to call it
(use_resolution_binning=False, complex_human_instruction=None, max_sequence_length 300, negative prompt "",
20 steps, guidance 4.5, torch.Generator("cpu").manual_seed(seed)): the images Darkroom must give within 2/255.

    .venv/bin/python tools/reference/make_tiny_scenes_reference.py
writes Tests/DiffusionTests/Fixtures/expected/tiny-scenes.safetensors: `image_u8_hwc_<i>` (float32 of the PNG's
uint8 values, [H, W, 3]) per case of CASES. Re-run it whenever models/tiny-scenes changes."""
import os
import numpy as np
import torch
from diffusers import SanaPipeline
from safetensors.numpy import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# (prompt, width, height, seed) — Tests/DiffusionTests/TinyScenesTests.swift lists the same cases
CASES = [("a red circle above a blue square", 64, 64, 0),
         ("blue square on the right, red triangle on the left, grey background", 64, 32, 0),
         ("a purple square above a white ring", 32, 64, 7)]


def main() -> None:
    torch.set_num_threads(1)
    pipe = SanaPipeline.from_pretrained(os.path.join(ROOT, "models/tiny-scenes"), torch_dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    out = {}
    for i, (prompt, w, h, seed) in enumerate(CASES):
        img = pipe(prompt, negative_prompt="", height=h, width=w, num_inference_steps=20, guidance_scale=4.5,
                   generator=torch.Generator("cpu").manual_seed(seed), use_resolution_binning=False,
                   complex_human_instruction=None, max_sequence_length=300).images[0]
        out[f"image_u8_hwc_{i}"] = np.asarray(img.convert("RGB"), dtype=np.float32)
    save_file(out, os.path.join(ROOT, "Tests/DiffusionTests/Fixtures/expected/tiny-scenes.safetensors"))
    print("wrote", len(out), "images")


if __name__ == "__main__":
    main()
