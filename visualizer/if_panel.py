"""The DeepFloyd IF dock: model status, prompt, image, mask and settings, then Run (Ctrl+R).

A view over `core.if_tasks.IFRequest`: every field maps to one of its fields (and to one of
`diffusion-stepper sample if`'s flags). The run itself goes through the main window's sampling
worker, so its frames appear in the Step view as they are produced.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Optional

import torch
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from core.bundled import sample_image
from core.errors import UserFacingError
from core.if_embeddings import PromptEmbeddings
from core.if_models import REQUIREMENTS, STAGE_I_SIZES, stage_source, weights_present
from core.if_sampling import DEFAULT_GUIDANCE, DEFAULT_STRIDE, VIEW_NAMES
from core.if_tasks import (
    AT_CHOSEN_T,
    DEFAULT_I_START,
    DEFAULT_TIMESTEPS,
    DEFAULT_VIEWS,
    FROM_I_START,
    NEEDS_IMAGE,
    NEUTRAL_PROMPT,
    WITHOUT_UNET,
    IFRequest,
    loaded_stages,
)
from core.parsing import parse_int_list

# One-click part A experiments: key -> (menu title, compared side by side).
PART_A_EXPERIMENTS = {
    "forward": ("Forward process at t = 250, 500, 750", False),
    "denoisers": ("Blur vs one-step vs iterative denoising (PSNR)", True),
    "cfg": ("Sampling without and with CFG", True),
    "sdedit": ("SDEdit strip, i_start = 1, 3, 5, 7, 10, 20", True),
    "inpaint": ("Inpainting with the mask", False),
    "text-i2i": ("Text-conditional image-to-image, i_start = 1 … 20", True),
    "anagram": ("Visual anagram", False),
    "hybrid": ("Hybrid image", False),
}

TASK_LABELS = {
    "sample": "Sample from noise (CFG)",
    "forward": "Forward process (1.1)",
    "blur": "Gaussian-blur denoising (1.2)",
    "one-step": "One-step denoising (1.3)",
    "iterative": "Iterative denoising (1.4)",
    "sdedit": "SDEdit strip (1.7)",
    "inpaint": "Inpainting (1.7.2)",
    "text-i2i": "Text-conditioned image-to-image (1.7.3)",
    "anagram": "Visual anagram (1.8)",
    "hybrid": "Hybrid image (1.9)",
    "upscale": "Upscale with stage II",
}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")  # what the IF dock takes as a picture
IMAGE_FILTER = f"Images ({' '.join('*' + suffix for suffix in IMAGE_SUFFIXES)});;Stage I runs (*.npz);;All files (*)"
DENOISERS_T = 690  # part A's comparison of the denoisers: t = 690 is i_start 10 of the stride-30 chain
DENOISERS_I_START = 10


def comma_list(values) -> str:
    return ", ".join(str(value) for value in values)


def describe_loaded(stage) -> str:
    """"stage I (IF-I-XL-v1.0, 4300.0 M parameters, float16) on cuda:0"."""
    parameters = sum(parameter.numel() for parameter in stage.unet.parameters())
    dtype = str(stage.dtype).removeprefix("torch.")
    return f"stage {'I' * stage.stage} ({Path(stage.source).name}, {parameters / 1e6:.1f} M parameters, {dtype}) on {stage.device}"


def folder_summary(folder: str) -> str:
    """"16 px, 3 input channels" for a stage folder, from its UNet config alone (nothing loaded)."""
    config_path = Path(folder) / "unet" / "config.json"
    try:
        config = json.loads(config_path.read_text())
    except (OSError, ValueError):
        return "not an IF stage folder (no unet/config.json)"
    return f"{config.get('sample_size', '?')} px, {config.get('in_channels', '?')} input channels"


class IFPanel(QWidget):
    run_requested = Signal()
    cancel_requested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self._embeddings: Optional[PromptEmbeddings] = None

        self.model_size = QComboBox()
        for size, hub_id in STAGE_I_SIZES.items():
            self.model_size.addItem(f"{hub_id} (hub)", size)
        self.model_size.setToolTip("Stage I from the Hugging Face hub (needs the license accepted and `hf auth login`)")
        self.model_folder = QLineEdit()
        self.model_folder.setPlaceholderText("or a local stage I folder…")
        self.stage2_folder = QLineEdit()
        self.stage2_folder.setPlaceholderText("hub: DeepFloyd/IF-II-L-v1.0, or a local folder…")
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setObjectName("ifStatus")

        self.embeddings_path = QLineEdit()
        self.embeddings_path.setPlaceholderText("prompt_embeds_dict.pth (the course's file)")
        self.embeddings_path.editingFinished.connect(self._load_embeddings)
        self.use_t5 = QCheckBox("encode new prompts with T5 (about 9.5 GB)")
        self.prompt = QComboBox()
        self.prompt.setEditable(True)
        self.prompt.setCurrentText(NEUTRAL_PROMPT)
        self.prompt2 = QComboBox()
        self.prompt2.setEditable(True)
        self.prompt2.setToolTip("Anagram: the prompt of the second view; hybrid: the high frequencies")

        self.task = QComboBox()
        for key, label in TASK_LABELS.items():
            self.task.addItem(label, key)
        self.image_path = QLineEdit(str(sample_image("tower.png")))
        self.image_path.setPlaceholderText("an image (drop one on the window)")
        self.image_path.setToolTip("Any picture (drop one on the window); bundled ones are in resources/images")
        self.mask_path = QLineEdit(str(sample_image("tower-mask.png")))
        self.mask_path.setPlaceholderText("black and white; white = new content")
        self.i_start = QLineEdit(comma_list(DEFAULT_I_START["sdedit"]))
        self.i_start.setToolTip("Start at these indices of the timesteps; several give one run each, side by side")
        self.views = QLineEdit(comma_list(DEFAULT_VIEWS))
        self.views.setToolTip(f"One view per prompt: {', '.join(VIEW_NAMES)}")
        self.timesteps = QLineEdit(comma_list(DEFAULT_TIMESTEPS))
        self.blur_kernel = QSpinBox()
        self.blur_kernel.setRange(0, 99)
        self.blur_kernel.setSingleStep(2)
        self.blur_kernel.setSpecialValueText("task default")
        self.blur_kernel.setToolTip("Gaussian kernel size (odd): blur denoising 5, hybrid images 33")
        self.blur_sigma = QDoubleSpinBox()
        self.blur_sigma.setRange(0.1, 20.0)
        self.blur_sigma.setValue(2.0)
        self.blur_sigma.setPrefix("σ ")
        blur_row = QHBoxLayout()
        blur_row.addWidget(self.blur_kernel, 1)
        blur_row.addWidget(self.blur_sigma, 1)

        self.stride = QSpinBox()
        self.stride.setRange(1, 999)
        self.stride.setValue(DEFAULT_STRIDE)
        self.stride.setToolTip("The course's strided timesteps 990, 990 − K, …, 0")
        self.steps = QSpinBox()
        self.steps.setRange(0, 1000)
        self.steps.setSpecialValueText("use the stride")
        self.steps.setPrefix("scheduler steps ")
        self.steps.setToolTip("Instead of the stride: the scheduler's own set_timesteps(N), as diffusers' IFPipeline")
        chain_row = QHBoxLayout()
        chain_row.addWidget(self.stride, 1)
        chain_row.addWidget(self.steps, 2)
        self.guidance = QDoubleSpinBox()
        self.guidance.setRange(0.0, 50.0)
        self.guidance.setSingleStep(0.5)
        self.guidance.setValue(DEFAULT_GUIDANCE)
        self.use_cfg = QCheckBox("classifier-free guidance")
        self.use_cfg.setChecked(True)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.x0_clip = QComboBox()
        self.x0_clip.addItem("dynamic thresholding (IF)", "dynamic")
        self.x0_clip.addItem("none (the course's formula)", "none")
        self.device = QComboBox()
        self.device.addItems(["auto", "cpu", "cuda"])
        self.allow_cpu = QCheckBox("allow the CPU (slow for real IF)")

        form = QFormLayout()
        model_row = QVBoxLayout()
        model_row.addWidget(self.model_size)
        model_row.addLayout(self._with_button(self.model_folder, "Folder…", self.ask_model_folder))
        form.addRow("Stage I", model_row)
        form.addRow("Stage II", self._with_button(self.stage2_folder, "Folder…", self.ask_stage2_folder))
        form.addRow(self.status)
        form.addRow("Embeddings", self._with_button(self.embeddings_path, "Open…", self.ask_embeddings))
        form.addRow("", self.use_t5)
        form.addRow("Task", self.task)
        form.addRow("Prompt", self.prompt)
        form.addRow("Prompt 2", self.prompt2)
        form.addRow("Image", self._with_button(
            self.image_path, "Open…", self.ask_image,
            ("Sketch…", self.sketch, "Draw a scribble; SDEdit projects it onto natural images (part A 1.7.1)")))
        form.addRow("Mask", self._with_button(
            self.mask_path, "Open…", self.ask_mask,
            ("Paint…", self.paint_mask, "Paint the mask over the image: brush, eraser, rectangle, clear, invert")))
        form.addRow("i_start", self.i_start)
        form.addRow("Views", self.views)
        form.addRow("t", self.timesteps)
        form.addRow("Gaussian", blur_row)
        form.addRow("Stride", chain_row)
        form.addRow("Guidance γ", self.guidance)
        form.addRow("", self.use_cfg)
        form.addRow("x̂₀", self.x0_clip)
        form.addRow("Seed", self.seed)
        form.addRow("Device", self.device)
        form.addRow("", self.allow_cpu)
        self.form = form

        self.run_button = QPushButton("Run IF  (Ctrl+R)")
        self.run_button.clicked.connect(self.run_requested)
        self.cancel_button = QPushButton("Cancel  (Esc)")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel_requested)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addStretch(1)

        self.task.currentIndexChanged.connect(self._update_fields)
        self.model_size.currentIndexChanged.connect(self.update_status)
        self.model_folder.textChanged.connect(self.update_status)
        self.device.currentIndexChanged.connect(self.update_status)
        self._update_fields()
        self.update_status()

    @staticmethod
    def _with_button(field: QLineEdit, text: str, slot, *more: tuple) -> QHBoxLayout:
        """A field with a button after it (and more buttons, as (text, slot, tooltip))."""
        row = QHBoxLayout()
        row.addWidget(field, 1)
        for label, action, tooltip in [(text, slot, ""), *more]:
            button = QPushButton(label)
            button.setToolTip(tooltip)
            button.clicked.connect(action)
            row.addWidget(button)
        return row

    # --- files ----------------------------------------------------------------------------------

    def ask_model_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Stage I folder (diffusers layout: unet/, scheduler/)")
        if folder:
            self.model_folder.setText(folder)

    def ask_stage2_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Stage II folder (diffusers layout)")
        if folder:
            self.stage2_folder.setText(folder)

    def ask_embeddings(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Prompt embeddings", "", "Embeddings (*.pth *.pt);;All files (*)")
        if path:
            self.set_embeddings(path)

    def ask_image(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Image", str(sample_image().parent), IMAGE_FILTER)
        if path:
            self.set_image(path)

    def crop_dialog_for(self, path: str | Path):
        """The crop-to-square step for a picture that is not square; None when there is nothing to choose."""
        from PIL import Image, UnidentifiedImageError

        from visualizer.crop_dialog import CropDialog
        from visualizer.train_view import WORK_FOLDER

        if Path(path).suffix.lower() == ".npz":
            return None
        try:
            with Image.open(path) as image:
                if image.width == image.height:
                    return None
        except (OSError, UnidentifiedImageError):
            return None  # the run reports what is wrong with the file, in one line
        return CropDialog(path, WORK_FOLDER / "crops" / f"{Path(path).stem}-square.png", self)

    def set_image(self, path: str | Path) -> None:
        """Use `path` as the image, after the crop-to-square step when it is not square
        (cancelling it keeps the picture, and IF takes its centre square)."""
        dialog = self.crop_dialog_for(path)
        if dialog is not None and dialog.exec():
            path = dialog.out_path
        self.image_path.setText(str(path))

    def ask_mask(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Mask", str(sample_image().parent), IMAGE_FILTER)
        if path:
            self.mask_path.setText(path)

    def mask_editor(self):
        """The mask editor for the current image, starting from the current mask; a
        UserFacingError when there is no picture to paint on."""
        from visualizer.painting import MaskEditor
        from visualizer.train_view import WORK_FOLDER

        image = self.image_path.text().strip()
        if not image or not Path(image).is_file() or Path(image).suffix == ".npz":
            raise UserFacingError("open a picture first (Image ▸ Open…), then paint its mask")
        out = WORK_FOLDER / "masks" / f"{Path(image).stem}-mask.png"
        return MaskEditor(image, self.mask_path.text().strip() or None, out, self)

    def paint_mask(self) -> None:
        try:
            editor = self.mask_editor()
        except UserFacingError as error:
            self.status.setText(str(error))
            return
        if editor.exec():
            self.mask_path.setText(str(editor.out_path))

    def sketch_editor(self):
        from visualizer.painting import SketchEditor
        from visualizer.train_view import WORK_FOLDER

        return SketchEditor(WORK_FOLDER / "sketches" / f"sketch-{time.strftime('%Y%m%d-%H%M%S')}.png", parent=self)

    def sketch(self) -> None:
        """Draw a sketch; it becomes the image, for an SDEdit strip unless the task takes an image already."""
        editor = self.sketch_editor()
        if editor.exec():
            self.use_sketch(editor.out_path)

    def use_sketch(self, path: Path) -> None:
        self.image_path.setText(str(path))
        if self.task_key not in NEEDS_IMAGE or self.task_key == "upscale":
            self.task.setCurrentIndex(self.task.findData("sdedit"))

    def set_embeddings(self, path: str | Path) -> None:
        """Read the embeddings file now, so its prompts can be offered; errors surface at Run."""
        self.embeddings_path.setText(str(path))
        self._load_embeddings()

    def _load_embeddings(self) -> None:
        path = self.embeddings_path.text().strip()
        self._embeddings = None
        if not path:
            return
        try:
            self._embeddings = PromptEmbeddings.from_file(path)
        except UserFacingError as error:
            self.status.setText(str(error))
            return
        prompts = self._embeddings.prompts
        for box, fallback in ((self.prompt, 0), (self.prompt2, 1)):  # keep what was typed if the file has it
            typed = box.currentText()
            box.clear()
            box.addItems(prompts)
            if typed not in prompts and prompts:
                typed = prompts[min(fallback, len(prompts) - 1)]
            box.setCurrentText(typed)
        self.update_status()

    # --- what the panel shows -------------------------------------------------------------------

    @property
    def known_prompts(self) -> list[str]:
        """The prompts the embeddings file has (none before one is opened)."""
        return self._embeddings.prompts if self._embeddings else []

    @property
    def task_key(self) -> str:
        return self.task.currentData()

    def _update_fields(self) -> None:
        task = self.task_key
        rows = {
            self.prompt2: task in ("anagram", "hybrid"),
            self.image_path: task in NEEDS_IMAGE,
            self.mask_path: task == "inpaint",
            self.i_start: task in FROM_I_START,
            self.views: task == "anagram",
            self.timesteps: task in AT_CHOSEN_T,
            self.blur_kernel: task in ("blur", "one-step", "hybrid"),
            self.stride: task not in AT_CHOSEN_T,
            self.guidance: task not in WITHOUT_UNET,
            self.use_cfg: task not in WITHOUT_UNET,
            self.x0_clip: task not in AT_CHOSEN_T,
        }
        for widget, visible in rows.items():
            self.form.setRowVisible(self._row_of(widget), visible)
        if task in DEFAULT_I_START:
            self.i_start.setText(comma_list(DEFAULT_I_START[task]))
        self.use_cfg.setChecked(task not in ("one-step", "iterative"))

    def _row_of(self, widget: QWidget) -> int:
        """The form row holding `widget`, directly or inside a field-and-button row."""
        for row in range(self.form.rowCount()):
            item = self.form.itemAt(row, QFormLayout.ItemRole.FieldRole)
            if item is not None and (item.widget() is widget or (item.layout() is not None and item.layout().indexOf(widget) >= 0)):
                return row
        raise LookupError(f"{widget} is not in the IF form")

    def update_status(self) -> None:
        """Which stage weights the run will use, what they need, and what this machine has."""
        folder = self.model_folder.text().strip()
        if folder:
            stage_one = f"Stage I: folder {Path(folder).name} ({folder_summary(folder)})"
        else:
            source = stage_source(1, self.model_size.currentData())
            need = REQUIREMENTS[source]
            if weights_present(source):
                stage_one = f"Stage I: {source}, in the Hugging Face cache (sampling needs about {need.vram_gb:g} GB of GPU memory)"
            else:
                stage_one = (f"Stage I: {source}, not downloaded yet ({need.describe()}; accept the license on its model "
                             "card, then `hf auth login`; the first run downloads it)")
        if torch.cuda.is_available():
            free, total = torch.cuda.mem_get_info()
            machine = f"GPU: {torch.cuda.get_device_name(0)}, {(total - free) / 2**30:.1f} of {total / 2**30:.0f} GB in use"
        else:
            machine = "no CUDA GPU here: IF runs only with “allow the CPU”, slowly; saved IF runs open fine (File ▸ Open)"
        prompts = f"{len(self._embeddings.prompts)} prompts in the embeddings" if self._embeddings else "no embeddings file yet"
        loaded = [describe_loaded(stage) for stage in loaded_stages()]
        in_memory = "loaded: " + "; ".join(loaded) if loaded else "nothing loaded yet: the first run loads the model"
        self.status.setText(f"{stage_one}\n{machine}\n{in_memory}\n{prompts}")

    # --- requests -------------------------------------------------------------------------------

    def requests(self, task: Optional[str] = None) -> list[IFRequest]:
        """The settings as core requests for `task` (default: the chosen one): one per i_start
        for an SDEdit strip."""
        task = task or self.task_key
        prompts = [self.prompt.currentText().strip()]
        if task in ("anagram", "hybrid"):
            prompts.append(self.prompt2.currentText().strip())
        if not self.embeddings_path.text().strip() and not self.use_t5.isChecked():
            raise UserFacingError("IF needs prompt embeddings: open the course's prompt_embeds_dict.pth (Embeddings ▸ Open…) or tick T5")
        request = IFRequest(
            task=task,
            prompt=prompts,
            seed=self.seed.value(),
            guidance=self.guidance.value() if self.use_cfg.isChecked() else None,
            no_cfg=not self.use_cfg.isChecked(),
            x0_clip=self.x0_clip.currentData(),
            device=self.device.currentText(),
            allow_cpu=self.allow_cpu.isChecked(),
            embeddings=self.embeddings_path.text().strip() or None,
            t5=self.use_t5.isChecked(),
            prompt_table=self._embeddings if not self.use_t5.isChecked() else None,
            blur_kernel=self.blur_kernel.value() or None,
            blur_sigma=self.blur_sigma.value(),
        )
        if task == "upscale":  # stage II takes its own default chain (50 steps), not the stride
            request.model_dir = self.stage2_folder.text().strip() or None
        else:
            request.model_dir = self.model_folder.text().strip() or None
            request.size = None if request.model_dir else self.model_size.currentData()
            if task not in AT_CHOSEN_T:
                if self.steps.value():
                    request.steps = self.steps.value()
                else:
                    request.stride = self.stride.value()
        if task in NEEDS_IMAGE:
            request.image = self.image_path.text().strip() or None
        if task == "inpaint":
            request.mask = self.mask_path.text().strip() or None
        try:
            if task in FROM_I_START:
                request.i_start = parse_int_list(self.i_start.text())
        except ValueError as error:
            raise UserFacingError(f"i_start: {error}") from None
        try:
            if task in AT_CHOSEN_T:
                request.t = parse_int_list(self.timesteps.text())
        except ValueError as error:
            raise UserFacingError(f"t: {error}") from None
        if task == "anagram":
            request.views = [view.strip() for view in self.views.text().split(",") if view.strip()]
            unknown = [view for view in request.views if view not in VIEW_NAMES]
            if unknown:
                raise UserFacingError(f"unknown view {unknown[0]!r}; choose from {', '.join(VIEW_NAMES)}")
        return request.expand()

    def experiment_requests(self, key: str) -> list[IFRequest]:
        """The runs of one part A experiment (PART_A_EXPERIMENTS), from the dock's model,
        embeddings, image and seed."""
        if key == "denoisers":  # 1.2-1.4 at one noise level, the UNet's without CFG as in the course
            blur, one_step, iterative = (self.requests(task)[0] for task in ("blur", "one-step", "iterative"))
            blur.t = one_step.t = [DENOISERS_T]
            iterative.stride, iterative.steps, iterative.i_start = DEFAULT_STRIDE, None, [DENOISERS_I_START]
            for request in (one_step, iterative):
                request.no_cfg, request.guidance = True, None
            return [blur, one_step, iterative]
        if key == "cfg":  # 1.5 against 1.6: the same seed, without and with guidance
            without = self.requests("sample")[0]
            without.no_cfg, without.guidance = True, None
            with_cfg = self.requests("sample")[0]
            with_cfg.no_cfg, with_cfg.guidance = False, self.guidance.value() or DEFAULT_GUIDANCE
            return [without, with_cfg]
        if key == "forward":
            request = self.requests("forward")[0]
            request.t = list(DEFAULT_TIMESTEPS)
            return [request]
        if key in ("sdedit", "text-i2i"):  # the course's strip: i_start 1 … 20 of the stride-30 chain
            return dataclasses.replace(self.requests(key)[0], i_start=None, stride=DEFAULT_STRIDE, steps=None).expand()
        return self.requests(key)

    def set_busy(self, busy: bool) -> None:
        self.cancel_button.setEnabled(busy)
        self.run_button.setEnabled(not busy)
