"""The DeepFloyd IF dock: model status, prompt, image, mask and settings, then Run (Ctrl+R).

A view over `core.deepfloyd_if.tasks.IFRequest`: every field maps to one of its fields (and to
one of `diffusion-stepper sample if`'s flags). `settings()` is one request holding them all; each
run takes what its task reads (`IFRequest.for_task`). The runs go through the sampling
controller, so their frames appear in the Step view as they are produced.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDockWidget,
    QFileDialog,
    QFormLayout,
    QLabel,
    QLineEdit,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from diffusion_stepper.core.deepfloyd_if.embeddings import PromptEmbeddings
from diffusion_stepper.core.deepfloyd_if.models import STAGE_I_SIZES
from diffusion_stepper.core.deepfloyd_if.sampling import DEFAULT_GUIDANCE, DEFAULT_STRIDE
from diffusion_stepper.core.deepfloyd_if.status import status_text
from diffusion_stepper.core.deepfloyd_if.tasks import (
    AT_CHOSEN_T,
    DEFAULT_I_START,
    DEFAULT_TIMESTEPS,
    DEFAULT_VIEWS,
    FROM_I_START,
    NEEDS_IMAGE,
    NEUTRAL_PROMPT,
    WITHOUT_CFG,
    WITHOUT_UNET,
    IFRequest,
)
from diffusion_stepper.core.devices import DEVICE_CHOICES
from diffusion_stepper.core.diffusion.rules.catalogue import EPS_SAMPLERS, IF_SAMPLERS
from diffusion_stepper.core.errors import UserFacingError
from diffusion_stepper.core.parsing import parse_int_list
from diffusion_stepper.core.run_meta import VIEW_NAMES
from diffusion_stepper.visualizer.docks.if_images import IFImageFields
from diffusion_stepper.visualizer.widgets.forms import button, float_box, row, show_rows, spin_box

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


def comma_list(values) -> str:
    return ", ".join(str(value) for value in values)


def parsed_ints(field: QLineEdit, name: str) -> list[int]:
    try:
        return parse_int_list(field.text())
    except ValueError as error:
        raise UserFacingError(f"{name}: {error}") from None


def editable_box(text: str = "", tooltip: str = "") -> QComboBox:
    box = QComboBox()
    box.setEditable(True)
    box.setCurrentText(text)
    box.setToolTip(tooltip)
    return box


class IFDock(QDockWidget):
    run_requested = Signal()
    cancel_requested = Signal()

    def __init__(self, parent=None):
        super().__init__("DeepFloyd IF", parent)
        self.setObjectName("deepfloyd ifDock")  # the name older saved layouts know it by
        self._embeddings: PromptEmbeddings | None = None
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
        self.prompt = editable_box(NEUTRAL_PROMPT)
        self.prompt2 = editable_box(tooltip="Anagram: the prompt of the second view; hybrid: the high frequencies")
        self.task = QComboBox()
        for key, label in TASK_LABELS.items():
            self.task.addItem(label, key)
        self.images = IFImageFields(self)
        self.images.sketched.connect(self._on_sketch)
        self.images.failed.connect(self.status.setText)
        self.i_start = QLineEdit(comma_list(DEFAULT_I_START["sdedit"]))
        self.i_start.setToolTip("Start at these indices of the timesteps; several give one run each, side by side")
        self.views = QLineEdit(comma_list(DEFAULT_VIEWS))
        self.views.setToolTip(f"One view per prompt: {', '.join(VIEW_NAMES)}")
        self.timesteps = QLineEdit(comma_list(DEFAULT_TIMESTEPS))
        self.blur_kernel = spin_box(0, 99, tooltip="Gaussian kernel size (odd): blur denoising 5, hybrid images 33")
        self.blur_kernel.setSingleStep(2)
        self.blur_kernel.setSpecialValueText("task default")
        self.blur_sigma = float_box(0.1, 20.0, 2.0, 0.1)
        self.blur_sigma.setPrefix("σ ")
        self.stride = spin_box(
            1,
            999,
            DEFAULT_STRIDE,
            "The course's strided timesteps 990, 990 − K, …, 0, then one more step from t = 0 to the clean image "
            "(t = −1), as diffusers does: 34 UNet calls for stride 30",
        )
        self.steps = spin_box(
            0, 1000, tooltip="Instead of the stride: the scheduler's own set_timesteps(N), as diffusers' IFPipeline"
        )
        self.steps.setSpecialValueText("use the stride")
        self.steps.setPrefix("scheduler steps ")
        self.guidance = float_box(0.0, 50.0, DEFAULT_GUIDANCE, 0.5)
        self.use_cfg = QCheckBox("classifier-free guidance")
        self.seed = spin_box(0, 2**31 - 1)
        self.x0_clip = QComboBox()
        self.x0_clip.addItem("dynamic thresholding (IF)", "dynamic")
        self.x0_clip.addItem("none (the course's formula)", "none")
        self.sampler = QComboBox()
        for name in IF_SAMPLERS:
            self.sampler.addItem(EPS_SAMPLERS[name].title, name)
            self.sampler.setItemData(self.sampler.count() - 1, EPS_SAMPLERS[name].summary, Qt.ItemDataRole.ToolTipRole)
        self.sampler.setToolTip("The step rule: DDPM's with IF's learned variance (IF's own), DDIM, or DPM-Solver++")
        self.eta = float_box(0.0, 1.0, 0.0, 0.1, "DDIM's noise scale η: 0 deterministic, 1 the DDPM posterior's noise")
        self.sampler.currentIndexChanged.connect(self._update_fields)
        self.device = QComboBox()
        self.device.addItems(DEVICE_CHOICES)
        self.allow_cpu = QCheckBox("allow the CPU (slow for real IF)")
        self.run_button = button("Run IF  (Ctrl+R)", self.run_requested)
        self.cancel_button = button("Cancel  (Esc)", self.cancel_requested)
        self.cancel_button.setEnabled(False)

        stage_one = QVBoxLayout()
        stage_one.addWidget(self.model_size)
        stage_one.addLayout(row(self.model_folder, button("Folder…", self.ask_model_folder)))
        self.form = QFormLayout()
        for label, field in (
            ("Stage I", stage_one),
            ("Stage II", row(self.stage2_folder, button("Folder…", self.ask_stage2_folder))),
            ("", self.status),
            ("Embeddings", row(self.embeddings_path, button("Open…", self.ask_embeddings))),
            ("", self.use_t5),
            ("Task", self.task),
            ("Prompt", self.prompt),
            ("Prompt 2", self.prompt2),
            ("Image", self.images.image_row),
            ("Mask", self.images.mask_row),
            ("i_start", self.i_start),
            ("Views", self.views),
            ("t", self.timesteps),
            ("Gaussian", row(self.blur_kernel, self.blur_sigma)),
            ("Stride", row(self.stride, self.steps)),
            ("Guidance γ", self.guidance),
            ("", self.use_cfg),
            ("x̂₀", self.x0_clip),
            ("Sampler", self.sampler),
            ("DDIM η", self.eta),
            ("Seed", self.seed),
            ("Device", self.device),
            ("", self.allow_cpu),
        ):
            self.form.addRow(label, field)
        content = QWidget()
        layout = QVBoxLayout(content)
        layout.addLayout(self.form)
        layout.addLayout(row(self.run_button, self.cancel_button, stretch_first=False))
        layout.addStretch(1)
        scroll = QScrollArea()  # the dock is tall: it scrolls on small screens rather than widen the window
        scroll.setWidget(content)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        self.setWidget(scroll)

        self.task.currentIndexChanged.connect(self._update_fields)
        self.model_size.currentIndexChanged.connect(self.update_status)
        self.model_folder.textChanged.connect(self.update_status)
        self.device.currentIndexChanged.connect(self.update_status)
        self._update_fields()
        self.update_status()

    # --- files ----------------------------------------------------------------------------------

    def _ask_folder(self, field: QLineEdit, title: str) -> None:
        folder = QFileDialog.getExistingDirectory(self, title)
        if folder:
            field.setText(folder)

    def ask_model_folder(self) -> None:
        self._ask_folder(self.model_folder, "Stage I folder (diffusers layout: unet/, scheduler/)")

    def ask_stage2_folder(self) -> None:
        self._ask_folder(self.stage2_folder, "Stage II folder (diffusers layout)")

    def ask_embeddings(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Prompt embeddings", "", "Embeddings (*.pth *.pt);;All files (*)")
        if path:
            self.set_embeddings(path)

    def set_image(self, path: str | Path) -> None:
        self.images.set_image(path)

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

    def _on_sketch(self) -> None:
        """A sketch is for an SDEdit strip, unless the task takes an image already."""
        if self.task_key not in NEEDS_IMAGE or self.task_key == "upscale":
            self.task.setCurrentIndex(self.task.findData("sdedit"))

    # --- what the dock shows --------------------------------------------------------------------

    @property
    def known_prompts(self) -> list[str]:
        """The prompts the embeddings file has (none before one is opened)."""
        return self._embeddings.prompts if self._embeddings else []

    @property
    def task_key(self) -> str:
        return self.task.currentData()

    def _update_fields(self) -> None:
        task = self.task_key
        show_rows(
            self.form,
            {
                self.prompt2: task in ("anagram", "hybrid"),
                self.images.image_path: task in NEEDS_IMAGE,
                self.images.mask_path: task == "inpaint",
                self.i_start: task in FROM_I_START,
                self.views: task == "anagram",
                self.timesteps: task in AT_CHOSEN_T,
                self.blur_kernel: task in ("blur", "one-step", "hybrid"),
                self.stride: task not in AT_CHOSEN_T,
                self.guidance: task not in WITHOUT_UNET,
                self.use_cfg: task not in WITHOUT_UNET,
                self.x0_clip: task not in AT_CHOSEN_T,
                self.sampler: task not in AT_CHOSEN_T,
                self.eta: task not in AT_CHOSEN_T and self.sampler.currentData() == "ddim",
            },
        )
        if task in DEFAULT_I_START:
            self.i_start.setText(comma_list(DEFAULT_I_START[task]))
        self.use_cfg.setChecked(task not in WITHOUT_CFG)

    def update_status(self) -> None:
        """Which stage weights the run will use, what they need, and what this machine has."""
        self.status.setText(status_text(self.model_folder.text(), self.model_size.currentData(), self._embeddings))

    def set_busy(self, busy: bool) -> None:
        self.cancel_button.setEnabled(busy)
        self.run_button.setEnabled(not busy)
        if not busy:
            self.update_status()  # a run may have loaded an IF stage, or changed GPU memory

    # --- requests -------------------------------------------------------------------------------

    def settings(self, task: str | None = None) -> IFRequest:
        """Every field as one request for `task` (default: the chosen one). The i_start and t fields
        are read only for a task that takes them; a bad field is a one-line UserFacingError."""
        task = task or self.task_key
        if not self.embeddings_path.text().strip() and not self.use_t5.isChecked():
            raise UserFacingError(
                "IF needs prompt embeddings: open the course's prompt_embeds_dict.pth (Embeddings ▸ Open…) or tick T5"
            )
        model_dir = self.model_folder.text().strip() or None
        return IFRequest(
            task=task,
            prompt=[self.prompt.currentText().strip(), self.prompt2.currentText().strip()],
            image=self.images.image,
            mask=self.images.mask,
            i_start=parsed_ints(self.i_start, "i_start") if task in FROM_I_START else None,
            views=[view.strip() for view in self.views.text().split(",") if view.strip()],
            t=parsed_ints(self.timesteps, "t") if task in AT_CHOSEN_T else None,
            steps=self.steps.value() or None,
            stride=None if self.steps.value() else self.stride.value(),
            guidance=self.guidance.value(),
            no_cfg=not self.use_cfg.isChecked(),
            seed=self.seed.value(),
            x0_clip=self.x0_clip.currentData(),
            sampler=self.sampler.currentData(),
            eta=self.eta.value() if self.sampler.currentData() == "ddim" else None,
            blur_kernel=self.blur_kernel.value() or None,
            blur_sigma=self.blur_sigma.value(),
            model_dir=model_dir,
            size=None if model_dir else self.model_size.currentData(),
            embeddings=self.embeddings_path.text().strip() or None,
            t5=self.use_t5.isChecked(),
            device=self.device.currentText(),
            allow_cpu=self.allow_cpu.isChecked(),
            prompt_table=self._embeddings if not self.use_t5.isChecked() else None,
        )

    def requests(self, task: str | None = None) -> list[IFRequest]:
        """The runs of `task` (default: the chosen one): one per i_start for an SDEdit strip."""
        task = task or self.task_key
        request = self.settings(task).for_task(task)
        if request.task == "upscale":  # stage II: its own folder, or the hub's default size
            request = dataclasses.replace(request, model_dir=self.stage2_folder.text().strip() or None, size=None)
        return request.expand()
