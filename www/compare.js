// Before/after viewer: two stacked canvases, the "after" one clipped at a
// divider that follows the visible part of the photo; Fit, 1:1 and 2:1 zoom
// (in device pixels) with pan by dragging, scrolling or the arrow keys.
export class Compare {
  constructor({ wrap, scroller, stage, before, after, divider, split, tagBefore, tagAfter, zoomButtons }) {
    Object.assign(this, { wrap, scroller, stage, before, after, divider, split, tagBefore, tagAfter, zoomButtons });
    this.zoom = "fit";
    this.hasAfter = false;
    this.width = 0;
    this.height = 0;
    this.#wire();
  }

  /** Shows new input pixels (ImageData); clears any result. */
  setBefore(imageData) {
    this.width = imageData.width;
    this.height = imageData.height;
    for (const canvas of [this.before, this.after]) {
      canvas.width = imageData.width;
      canvas.height = imageData.height;
    }
    this.before.getContext("2d").putImageData(imageData, 0, 0);
    this.clearAfter();
    this.setZoom("fit");
  }

  /**
   * Paints the left side without touching the zoom or the result: the
   * photo, or in an A/B comparison the earlier of two results.
   */
  paintBefore(imageData) {
    this.before.getContext("2d").putImageData(imageData, 0, 0);
  }

  /** The corner labels of the two sides. */
  setLabels(before, after) {
    this.tagBefore.textContent = before;
    this.tagAfter.textContent = after;
  }

  setAfter(imageData) {
    this.after.getContext("2d").putImageData(imageData, 0, 0);
    this.hasAfter = true;
    this.after.hidden = false;
    this.divider.hidden = false;
    this.tagAfter.hidden = false;
    this.split.parentElement.hidden = false;
    this.layout();
  }

  clearAfter() {
    this.hasAfter = false;
    this.after.hidden = true;
    this.divider.hidden = true;
    this.tagAfter.hidden = true;
    this.split.parentElement.hidden = true;
  }

  setZoom(zoom, focus) {
    const view = this.scroller;
    // Keep the point under `focus` (client coordinates) or the centre in place.
    const rect = view.getBoundingClientRect();
    const fx = focus ? focus.x - rect.left : view.clientWidth / 2;
    const fy = focus ? focus.y - rect.top : view.clientHeight / 2;
    const stageRect = this.stage.getBoundingClientRect();
    const u = stageRect.width ? (rect.left + fx - stageRect.left) / stageRect.width : 0.5;
    const v = stageRect.height ? (rect.top + fy - stageRect.top) / stageRect.height : 0.5;
    this.zoom = zoom;
    for (const button of this.zoomButtons) button.setAttribute("aria-pressed", String(button.dataset.zoom === zoom));
    this.layout();
    const next = this.stage.getBoundingClientRect();
    view.scrollLeft += next.left + u * next.width - (rect.left + fx);
    view.scrollTop += next.top + v * next.height - (rect.top + fy);
    this.#place();
  }

  layout() {
    if (!this.width) return;
    const view = this.scroller;
    let scale;
    if (this.zoom === "fit") {
      const maxHeight = parseFloat(getComputedStyle(view).maxHeight) || window.innerHeight * 0.7;
      scale = Math.min(view.clientWidth / this.width, maxHeight / this.height);
    } else {
      scale = Number(this.zoom) / (window.devicePixelRatio || 1);
    }
    const w = Math.max(1, Math.round(this.width * scale));
    const h = Math.max(1, Math.round(this.height * scale));
    this.stage.style.width = `${w}px`;
    this.stage.style.height = `${h}px`;
    this.scroller.classList.toggle("zoomed", this.zoom !== "fit");
    this.stage.classList.toggle("pixelated", scale * (window.devicePixelRatio || 1) >= 2);
    this.#place();
  }

  /** Puts the divider at the split fraction of the visible part of the photo. */
  #place() {
    const view = this.scroller.getBoundingClientRect();
    const stage = this.stage.getBoundingClientRect();
    const wrap = this.wrap.getBoundingClientRect();
    const left = Math.max(view.left, stage.left);
    const right = Math.min(view.right, stage.right);
    const top = Math.max(view.top, stage.top);
    const bottom = Math.min(view.bottom, stage.bottom);
    // The labels sit in the corners of the visible part of the photo.
    this.tagBefore.style.left = `${left - wrap.left + 8}px`;
    this.tagBefore.style.top = this.tagAfter.style.top = `${top - wrap.top + 8}px`;
    this.tagAfter.style.right = `${wrap.right - right + 8}px`;
    const roomy = right - left >= 180;
    this.tagBefore.classList.toggle("tag-hidden", !roomy);
    this.tagAfter.classList.toggle("tag-hidden", !roomy);
    if (!this.hasAfter) return;
    const x = left + (Number(this.split.value) / 100) * Math.max(0, right - left);
    this.divider.style.left = `${x - wrap.left}px`;
    this.divider.style.top = `${top - wrap.top}px`;
    this.divider.style.height = `${Math.max(0, bottom - top)}px`;
    const clip = ((x - stage.left) / stage.width) * 100;
    this.after.style.clipPath = `inset(0 0 0 ${Math.min(100, Math.max(0, clip))}%)`;
  }

  #splitFromClientX(clientX) {
    const view = this.scroller.getBoundingClientRect();
    const stage = this.stage.getBoundingClientRect();
    const left = Math.max(view.left, stage.left);
    const right = Math.min(view.right, stage.right);
    if (right <= left) return;
    this.split.value = String(Math.round(((clientX - left) / (right - left)) * 100));
    this.#place();
  }

  #wire() {
    this.split.addEventListener("input", () => this.#place());
    this.scroller.addEventListener("scroll", () => this.#place(), { passive: true });
    new ResizeObserver(() => this.layout()).observe(this.scroller);
    for (const button of this.zoomButtons) {
      button.addEventListener("click", () => this.setZoom(button.dataset.zoom));
    }
    this.scroller.addEventListener("dblclick", (event) => {
      this.setZoom(this.zoom === "fit" ? "1" : "fit", { x: event.clientX, y: event.clientY });
    });

    // Drag on the divider (or anywhere when not zoomed) moves the split;
    // drag elsewhere pans when zoomed.
    let drag = null;
    const start = (event, mode) => {
      if (event.button !== 0) return;
      drag = { mode, x: event.clientX, y: event.clientY, left: this.scroller.scrollLeft, top: this.scroller.scrollTop, id: event.pointerId };
      event.currentTarget.setPointerCapture(event.pointerId);
      if (mode === "split") this.#splitFromClientX(event.clientX);
      event.preventDefault();
    };
    const move = (event) => {
      if (!drag || event.pointerId !== drag.id) return;
      if (drag.mode === "split") this.#splitFromClientX(event.clientX);
      else {
        this.scroller.scrollLeft = drag.left - (event.clientX - drag.x);
        this.scroller.scrollTop = drag.top - (event.clientY - drag.y);
      }
    };
    const end = () => {
      drag = null;
      this.scroller.classList.remove("panning");
    };
    this.divider.addEventListener("pointerdown", (event) => start(event, "split"));
    this.scroller.addEventListener("pointerdown", (event) => {
      const zoomed = this.zoom !== "fit";
      if (zoomed) {
        this.scroller.classList.add("panning");
        start(event, "pan");
      } else if (this.hasAfter) start(event, "split");
    });
    for (const target of [this.divider, this.scroller]) {
      target.addEventListener("pointermove", move);
      target.addEventListener("pointerup", end);
      target.addEventListener("pointercancel", end);
    }
    window.addEventListener("resize", () => this.layout());
  }
}
