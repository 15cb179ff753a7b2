// The interactive page of a diffusion-stepper run (core/exports/html_page.py writes it).
// Every number and picture was computed by the app; this script only lays them out and draws
// them: the panels of the frame under the slider, its equation, histograms and schedule.
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("run-data").textContent);
  const runs = data.runs;
  const BACKGROUND = "#181818";
  const GRID_PADDING = 1; // background pixels between the images of a grid, as in the app
  const COLOURS = data.colours.runs; // the app's colours (core/formats/palette.py): run k is the same colour in both
  const SCHEDULE_COLOURS = ["#e6e6e6", "#b0b0b0"];
  const GAP_COLOUR = data.colours.gap;
  const CACHED_PICTURES = 600; // decoded frames kept; older ones are decoded again when needed

  const $ = (id) => document.getElementById(id);
  const slider = $("slider");
  const state = {
    position: 0,
    align: "time",
    focus: 0, // the run whose numbers the side panel shows
    fps: 10,
    playing: false,
    timer: null,
    request: 0, // the newest drawing asked for: an older one that finishes late is dropped
    hidden: new Set(), // panel names switched off
  };

  // --- pictures ----------------------------------------------------------------------------------

  const decoded = new Map();

  function decode(uri) {
    const image = new Image();
    image.src = uri;
    return image.decode().then(() => {
      const canvas = document.createElement("canvas");
      canvas.width = image.naturalWidth;
      canvas.height = image.naturalHeight;
      const context = canvas.getContext("2d", { willReadFrequently: true });
      context.drawImage(image, 0, 0);
      return context.getImageData(0, 0, canvas.width, canvas.height);
    });
  }

  // A picture stored as a difference from another (its `base`: [panel, frame]) is that picture's
  // pixels plus the difference, modulo 256 per channel: the exact pixels the app computed.
  function pixels(run, panel, frame) {
    const key = run + "/" + panel + "/" + frame;
    if (decoded.has(key)) return decoded.get(key);
    const stored = runs[run].panels[panel].frames[frame];
    let promise;
    if (typeof stored === "string") {
      promise = decode(stored);
    } else {
      promise = Promise.all([decode(stored.uri), pixels(run, stored.base[0], stored.base[1])]).then(([difference, base]) => {
        const out = new ImageData(difference.width, difference.height);
        for (let i = 0; i < out.data.length; i += 4) {
          out.data[i] = (base.data[i] + difference.data[i]) & 255;
          out.data[i + 1] = (base.data[i + 1] + difference.data[i + 1]) & 255;
          out.data[i + 2] = (base.data[i + 2] + difference.data[i + 2]) & 255;
          out.data[i + 3] = 255;
        }
        return out;
      });
    }
    decoded.set(key, promise);
    if (decoded.size > CACHED_PICTURES) decoded.delete(decoded.keys().next().value);
    return promise;
  }

  // A batch's grid in `columns` columns, and the zoom at which it fits a box
  function gridOf(run, columns, boxWidth, boxHeight) {
    const [tileHeight, tileWidth] = run.tile;
    const rows = Math.ceil(run.count / columns);
    const width = columns * (tileWidth + GRID_PADDING) + GRID_PADDING;
    const height = rows * (tileHeight + GRID_PADDING) + GRID_PADDING;
    return { columns, rows, width, height, scale: Math.min(boxWidth / width, boxHeight / height) };
  }

  // The column count that shows a batch largest in a box: core.formats.layout.best_grid, in the browser
  // because the box is the window's. Compared runs (several cells) take one count, the one whose
  // smallest picture is largest, so that every run shows the same grid (a run's boxes differ a
  // little: the first row holds the panels' titles).
  function bestColumns(cells) {
    let best = null;
    const most = Math.max(...cells.map((cell) => runs[cell.run].count));
    for (let columns = 1; columns <= most; columns++) {
      const scale = Math.min(...cells.map((cell) => gridOf(runs[cell.run], columnsFor(cell.run, columns), ...cell.box).scale));
      if (best === null || scale > best.scale) best = { columns, scale };
    }
    return best.columns;
  }

  // a run with one column per class (several images of each) keeps that grid
  function columnsFor(run, columns) {
    return runs[run].fixed_columns || Math.min(columns, runs[run].count);
  }

  // The zoom a grid shows at: the exact fit from 1.5x up (nearly every pixel two screen pixels or
  // more; core.formats.layout.screen_scale waits for 2x, but a page shown small loses more than the
  // odd narrower pixel), a whole 1x between 1 and 1.5, and below 1 whatever fits the window.
  function screenScale(fit) {
    if (fit >= 1.5 || fit < 1) return fit;
    return 1;
  }

  // --- layout ------------------------------------------------------------------------------------

  let cells = []; // {run, panel, canvas, holder (the box it fits), box ([width, height]), grid}
  let rowCaptions = []; // per run, the element that shows its step (compared runs)

  function shownPanels(runIndex) {
    return runs[runIndex].panels.map((panel, index) => ({ panel, index })).filter(({ panel }) => !state.hidden.has(panel.name));
  }

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // One row per run when runs are compared; a single run shows its main panels in a row and its
  // extras (CFG's parts, the views of an anagram) in a smaller row below.
  function buildStage() {
    const stage = $("stage");
    stage.replaceChildren();
    cells = [];
    rowCaptions = [];
    const rows = [];
    if (runs.length === 1) {
      const shown = shownPanels(0);
      const main = shown.filter(({ panel }) => panel.main);
      const extras = shown.filter(({ panel }) => !panel.main);
      if (main.length) rows.push({ run: 0, panels: main, weight: 3, title: false });
      if (extras.length) rows.push({ run: 0, panels: extras, weight: main.length ? 1.4 : 3, title: false });
    } else {
      runs.forEach((_, run) => rows.push({ run, panels: shownPanels(run), weight: 1, title: true }));
    }
    const titlesOf = (row) => row.panels.map(({ panel }) => panel.title).join("|");
    rows.forEach((row, i) => {
      // compared runs: a panel's title once, above the first row, unless a row's panels differ
      const sameAsAbove = i > 0 && row.title && titlesOf(row) === titlesOf(rows[i - 1]);
      const rowElement = element("div", "row");
      rowElement.style.flex = String(row.weight);
      if (row.title) {
        const record = runs[row.run];
        const title = element("div", "row-title");
        title.style.color = COLOURS[row.run % COLOURS.length];
        if (record.difference) title.append(element("b", "", record.difference));
        const caption = element("span", "caption");
        title.append(caption, element("span", "name", record.name));
        rowCaptions[row.run] = caption;
        rowElement.append(title);
      }
      const cellRow = element("div", "cells");
      for (const { panel, index } of row.panels) {
        const figure = element("figure");
        if (!sameAsAbove) figure.append(element("figcaption", "", panel.title));
        const holder = element("div", "picture");
        const canvas = element("canvas", "pixels" + (runs[row.run].kind === "particles" ? " smooth" : ""));
        canvas.dataset.run = String(row.run);
        canvas.dataset.panel = panel.name;
        holder.append(canvas);
        figure.append(holder);
        cellRow.append(figure);
        cells.push({ run: row.run, panel: index, canvas, holder, grid: null });
      }
      rowElement.append(cellRow);
      stage.append(rowElement);
    });
    fitCells();
  }

  function fitCells() {
    for (const cell of cells) {
      const box = cell.holder.getBoundingClientRect();
      cell.box = [Math.max(box.width, 1), Math.max(box.height, 1)];
    }
    // a single run's panels each take the grid that suits its own box
    const groups = runs.length > 1 ? [cells] : cells.map((cell) => [cell]);
    for (const group of groups) {
      const columns = bestColumns(group);
      for (const cell of group) cell.grid = gridOf(runs[cell.run], columnsFor(cell.run, columns), ...cell.box);
    }
    // compared runs share one zoom, so that the same pixel is the same size in every run
    const shared = runs.length > 1 ? Math.min(...cells.map((cell) => cell.grid.scale)) : null;
    for (const cell of cells) {
      const fit = shared === null ? cell.grid.scale : shared;
      // pixels stay whole in a grid of images; a 2D picture (drawn, not pixel data) just fits
      const scale = runs[cell.run].kind === "particles" ? fit : screenScale(fit);
      cell.canvas.width = cell.grid.width;
      cell.canvas.height = cell.grid.height;
      cell.canvas.style.width = Math.max(1, Math.floor(cell.grid.width * scale)) + "px";
      cell.canvas.style.height = Math.max(1, Math.floor(cell.grid.height * scale)) + "px";
    }
  }

  function drawCell(cell, picture) {
    const run = runs[cell.run];
    const [tileHeight, tileWidth] = run.tile;
    const context = cell.canvas.getContext("2d");
    context.fillStyle = BACKGROUND;
    context.fillRect(0, 0, cell.canvas.width, cell.canvas.height);
    for (let i = 0; i < run.count; i++) {
      const column = i % cell.grid.columns;
      const row = Math.floor(i / cell.grid.columns);
      const x = GRID_PADDING + column * (tileWidth + GRID_PADDING);
      const y = GRID_PADDING + row * (tileHeight + GRID_PADDING);
      // image i of the batch lies at i * tileWidth in the frame's strip
      context.putImageData(picture, x - i * tileWidth, y, i * tileWidth, 0, tileWidth, tileHeight);
    }
  }

  // --- charts ------------------------------------------------------------------------------------

  // One small plotter for the histogram, the schedule and the race: bars, lines, dots and a cursor.
  function plot(canvas, chart) {
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth;
    const height = canvas.clientHeight;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    const context = canvas.getContext("2d");
    context.setTransform(ratio, 0, 0, ratio, 0, 0);
    context.clearRect(0, 0, width, height);
    const margin = { left: 40, right: 8, top: 8, bottom: 24 };
    const [x0, x1] = chart.x;
    const [y0, y1] = chart.y;
    const px = (x) => margin.left + ((x - x0) / (x1 - x0 || 1)) * (width - margin.left - margin.right);
    const py = (y) => height - margin.bottom - ((Math.min(y, y1) - y0) / (y1 - y0 || 1)) * (height - margin.top - margin.bottom);
    context.strokeStyle = "#555";
    context.lineWidth = 1;
    context.beginPath();
    context.moveTo(margin.left, margin.top);
    context.lineTo(margin.left, height - margin.bottom);
    context.lineTo(width - margin.right, height - margin.bottom);
    context.stroke();
    context.fillStyle = "#999";
    context.font = "11px system-ui, sans-serif";
    for (const tick of niceTicks(x0, x1)) {
      const x = px(tick);
      // centred under its tick, but kept inside the chart at either end
      context.textAlign = x > width - margin.right - 14 ? "right" : x < margin.left + 14 ? "left" : "center";
      context.fillText(formatTick(tick), x, height - margin.bottom + 13);
    }
    context.textAlign = "center";
    if (chart.xLabel) context.fillText(chart.xLabel, (margin.left + width - margin.right) / 2, height - 1);
    context.textAlign = "right";
    context.fillText(formatTick(y1), margin.left - 4, margin.top + 8);
    context.fillText(formatTick(y0), margin.left - 4, height - margin.bottom);
    for (const bars of chart.bars || []) {
      context.fillStyle = bars.colour;
      context.globalAlpha = 0.55;
      for (let i = 0; i < bars.heights.length; i++) {
        const left = px(bars.edges[i]);
        const top = py(bars.heights[i]);
        context.fillRect(left, top, Math.max(1, px(bars.edges[i + 1]) - left - 0.5), height - margin.bottom - top);
      }
      context.globalAlpha = 1;
    }
    for (const line of chart.lines || []) {
      context.strokeStyle = line.colour;
      context.lineWidth = line.width || 2;
      context.setLineDash(line.dash ? [5, 4] : []);
      context.beginPath();
      line.x.forEach((x, i) => (i ? context.lineTo(px(x), py(line.y[i])) : context.moveTo(px(x), py(line.y[i]))));
      context.stroke();
      context.setLineDash([]);
    }
    for (const dot of chart.dots || []) {
      context.fillStyle = dot.colour;
      context.beginPath();
      context.arc(px(dot.x), py(dot.y), 4, 0, 2 * Math.PI);
      context.fill();
    }
    if (chart.cursor !== undefined && chart.cursor !== null) {
      context.strokeStyle = "#fff";
      context.lineWidth = 1.5;
      context.beginPath();
      context.moveTo(px(chart.cursor), margin.top);
      context.lineTo(px(chart.cursor), height - margin.bottom);
      context.stroke();
    }
  }

  // A chart's legend, under it in HTML where it covers no curve: [text, colour, dashed] items
  function showLegend(id, items) {
    const box = $(id);
    box.replaceChildren();
    for (const [text, colour, dashed] of items) {
      const item = element("span", "legend-item");
      const swatch = element("span", "swatch" + (dashed ? " dashed" : ""));
      swatch.style.borderColor = colour;
      item.append(swatch, text);
      box.append(item);
    }
  }

  // About five round numbers across [low, high] for an axis
  function niceTicks(low, high) {
    const span = high - low || 1;
    const rough = span / 4;
    const power = Math.pow(10, Math.floor(Math.log10(rough)));
    const unit = [1, 2, 2.5, 5, 10].map((m) => m * power).find((u) => span / u <= 5) || 10 * power;
    const ticks = [];
    for (let tick = Math.ceil(low / unit) * unit; tick <= high + 1e-9; tick += unit) ticks.push(Number(tick.toPrecision(6)));
    return ticks;
  }

  function formatTick(value) {
    if (Math.abs(value) >= 100 || Number.isInteger(value)) return String(Math.round(value));
    return value.toFixed(Math.abs(value) < 1 ? 2 : 1);
  }

  function maximum(values) {
    return values.reduce((best, value) => Math.max(best, value), 0);
  }

  function drawHistogram(run, frame) {
    const h = frame.histograms;
    const xTheory = h.x_t_theory === null ? null : run.curves[h.x_t_theory];
    const noiseTheory = h.noise_theory === null ? null : run.curves[h.noise_theory];
    const edges = data.histogram_edges;
    const bars = [{ edges, heights: h.x_t, colour: data.colours.x_t }];
    const legend = [["x_t", data.colours.x_t]];
    const lines = [];
    if (h.noise) {
      bars.push({ edges, heights: h.noise, colour: data.colours.noise });
      legend.push([h.noise_name === "v_hat" ? "v̂" : "ε̂", data.colours.noise]);
    }
    if (xTheory) {
      lines.push({ x: xTheory.x, y: xTheory.y, colour: "#ffffff", dash: true });
      legend.push(["theory: " + xTheory.label, "#ffffff", true]);
    }
    if (noiseTheory) {
      lines.push({ x: noiseTheory.x, y: noiseTheory.y, colour: "#ffd89a", dash: true });
      legend.push([noiseTheory.label, "#ffd89a", true]);
    }
    // the clean images' spikes at 0 and 1 would flatten everything else: the axis stops at 2
    const top = Math.min(2, Math.max(0.5, maximum(h.x_t), maximum(h.noise || []), ...lines.map((l) => maximum(l.y))));
    plot($("histogram"), { x: [edges[0], edges[edges.length - 1]], y: [0, top * 1.05], bars, lines });
    showLegend("histogram-legend", legend);
    $("histogram-note").textContent = "theory for x_t: " + h.note;
  }

  function drawSchedule(run, frame) {
    const schedule = run.schedule;
    const canvas = $("schedule");
    canvas.hidden = !schedule.curves;
    $("schedule-note").textContent = schedule.note || "";
    const legend = (schedule.curves || []).map((curve, i) => [curve.label, SCHEDULE_COLOURS[i], i > 0]);
    if (schedule.gap) legend.push([schedule.gap.label, GAP_COLOUR, false]);
    showLegend("schedule-legend", legend);
    if (!schedule.curves) return;
    const xs = schedule.curves[0].x;
    // grey, solid and dashed: the runs' colours stay theirs alone
    const lines = schedule.curves.map((curve, i) => ({ x: curve.x, y: curve.y, colour: SCHEDULE_COLOURS[i], dash: i > 0 }));
    // CFG runs: when in the chain guidance acts (the app's green curve)
    if (schedule.gap) lines.push({ x: schedule.gap.x, y: schedule.gap.y, colour: GAP_COLOUR, dash: false });
    const low = xs[0];
    const high = xs[xs.length - 1];
    plot(canvas, {
      x: [low, high],
      y: [0, 1],
      lines,
      cursor: Math.min(high, Math.max(low, frame.t)),
      xLabel: schedule.x_label,
    });
  }

  function drawRace(shown) {
    const lines = runs.map((run, i) => ({ x: run.convergence.nfe, y: run.convergence.distance, colour: COLOURS[i % COLOURS.length] }));
    const dots = runs.map((run, i) => ({ x: run.convergence.nfe[shown[i]], y: run.convergence.distance[shown[i]], colour: COLOURS[i % COLOURS.length] }));
    const most = maximum(runs.map((run) => run.convergence.nfe[run.convergence.nfe.length - 1]));
    const top = maximum(runs.map((run) => maximum(run.convergence.distance)));
    plot($("race"), { x: [0, Math.max(1, most)], y: [0, top || 1], lines, dots, xLabel: "model evaluations (NFE)" });
    showLegend("race-legend", runs.map((run, i) => [run.difference || run.name, COLOURS[i % COLOURS.length]]));
  }

  // --- the side panel ----------------------------------------------------------------------------

  function showSettings(run) {
    const table = $("settings");
    table.replaceChildren();
    const rows = run.settings.concat([["frames on this page", keptText(run)]]);
    for (const [label, value] of rows) {
      const row = element("tr");
      row.append(element("td", "", label), element("td", "", value));
      table.append(row);
    }
  }

  function keptText(run) {
    const kept = run.frames.length;
    return kept === run.length ? String(kept) : kept + " of " + run.length + " (every " + data.every + ")";
  }

  function showNumbers(shown) {
    const run = runs[state.focus];
    const frame = run.frames[shown[state.focus]];
    $("caption").textContent = frame.caption;
    $("equation").textContent = frame.equation.join("\n");
    drawHistogram(run, frame);
    drawSchedule(run, frame);
    if (runs.length > 1) drawRace(shown);
  }

  // --- the slider ----------------------------------------------------------------------------------

  function timeline() {
    return data.timelines[state.align];
  }

  function show(position) {
    const positions = timeline();
    position = Math.max(0, Math.min(positions.length - 1, position));
    state.position = position;
    slider.value = String(position);
    const shown = positions[position];
    const request = ++state.request;
    // a single run's own step ("step 12/50"); compared runs: the place on the shared slider
    $("position").textContent =
      runs.length === 1 ? runs[0].frames[shown[0]].caption.split(" · ")[0] : "position " + position + " / " + (positions.length - 1);
    showNumbers(shown);
    runs.forEach((run, i) => {
      if (rowCaptions[i]) rowCaptions[i].textContent = run.frames[shown[i]].caption;
    });
    return Promise.all(cells.map((cell) => pixels(cell.run, cell.panel, shown[cell.run]))).then((pictures) => {
      if (request !== state.request) return; // the slider moved on meanwhile
      cells.forEach((cell, i) => drawCell(cell, pictures[i]));
      document.body.dataset.drawn = String(position); // what the browser tests wait for
      prefetch(position + 1);
    });
  }

  function prefetch(position) {
    const positions = timeline();
    for (let p = position; p < Math.min(positions.length, position + 3); p++) {
      for (const cell of cells) pixels(cell.run, cell.panel, positions[p][cell.run]);
    }
  }

  function step(delta) {
    setPlaying(false);
    show(state.position + delta);
  }

  function setPlaying(playing) {
    state.playing = playing;
    $("play").textContent = playing ? "❚❚" : "▶";
    clearTimeout(state.timer);
    if (playing) {
      if (state.position >= timeline().length - 1) show(0); // play from the start after the end
      tick();
    }
  }

  function tick() {
    state.timer = setTimeout(() => {
      if (!state.playing) return;
      if (state.position >= timeline().length - 1) {
        setPlaying(false);
        return;
      }
      show(state.position + 1).then(() => state.playing && tick());
    }, 1000 / state.fps);
  }

  // The side panel of numbers hides, so that the pictures can fill a projector's width
  function toggleNumbers() {
    const side = $("side");
    side.hidden = !side.hidden;
    $("numbers").classList.toggle("off", side.hidden);
    fitCells();
    show(state.position);
  }

  function changeSpeed(delta) {
    const speed = $("speed");
    speed.selectedIndex = Math.max(0, Math.min(speed.options.length - 1, speed.selectedIndex + delta));
    state.fps = Number(speed.value);
  }

  function setAlign(align) {
    // keep the focused run on the frame it showed
    const frame = timeline()[state.position][state.focus];
    state.align = align;
    const positions = timeline();
    slider.max = String(positions.length - 1);
    const position = positions.findIndex((shown) => shown[state.focus] >= frame);
    show(position < 0 ? positions.length - 1 : position);
  }

  // --- wiring ----------------------------------------------------------------------------------------

  function buildControls() {
    $("title").textContent = data.title;
    $("made").textContent = data.made;
    slider.max = String(timeline().length - 1);
    slider.addEventListener("input", () => {
      setPlaying(false);
      show(Number(slider.value));
    });
    $("play").addEventListener("click", () => setPlaying(!state.playing));
    $("numbers").addEventListener("click", toggleNumbers);
    $("speed").addEventListener("change", () => (state.fps = Number($("speed").value)));
    // a chosen select gives the keys back to the slider (a focused select would take the arrows)
    for (const select of document.querySelectorAll("select")) select.addEventListener("change", () => select.blur());
    if (runs.length > 1) {
      $("align-box").hidden = false;
      $("align").addEventListener("change", () => setAlign($("align").value));
      $("race-box").hidden = false;
      const focus = $("focus");
      runs.forEach((run, i) => focus.append(new Option(run.difference || run.name, String(i))));
      $("focus-box").hidden = false;
      focus.addEventListener("change", () => {
        state.focus = Number(focus.value);
        showSettings(runs[state.focus]);
        show(state.position);
      });
    }
    const names = [];
    runs.forEach((run) => run.panels.forEach((panel) => names.includes(panel.name) || names.push(panel.name)));
    for (const name of names) {
      const panel = runs.flatMap((run) => run.panels).find((p) => p.name === name);
      if (runs.length > 1 && !panel.main) state.hidden.add(name); // compared runs: the extras on demand
      const label = element("label");
      const box = element("input");
      box.type = "checkbox";
      box.checked = !state.hidden.has(name);
      box.addEventListener("change", () => {
        if (box.checked) state.hidden.delete(name);
        else state.hidden.add(name);
        buildStage();
        show(state.position);
      });
      label.append(box, " " + panel.title);
      $("panel-toggles").append(label);
    }
    document.addEventListener("keydown", (event) => {
      if (event.target.tagName === "SELECT" || event.altKey || event.ctrlKey || event.metaKey) return;
      // Space on a focused button or checkbox presses it, as everywhere else
      const pressable = event.target.tagName === "BUTTON" || event.target.type === "checkbox";
      if (event.key === " " && pressable) return;
      const big = event.shiftKey ? 10 : 1;
      const actions = {
        ArrowRight: () => step(big),
        ArrowLeft: () => step(-big),
        PageDown: () => step(10),
        PageUp: () => step(-10),
        Home: () => step(-timeline().length),
        End: () => step(timeline().length),
        " ": () => setPlaying(!state.playing),
        n: () => toggleNumbers(),
        N: () => toggleNumbers(),
        "+": () => changeSpeed(1),
        "=": () => changeSpeed(1),
        "-": () => changeSpeed(-1),
      };
      const action = actions[event.key];
      if (action) {
        event.preventDefault(); // the slider, when focused, would step a second time
        action();
      }
    });
    let resizing = null;
    window.addEventListener("resize", () => {
      clearTimeout(resizing);
      resizing = setTimeout(() => {
        fitCells();
        show(state.position);
      }, 60);
    });
  }

  buildControls();
  if (runs[0].kind === "particles") $("values-heading").textContent = "Particle coordinates";
  showSettings(runs[0]);
  buildStage();
  show(0).then(() => (document.body.dataset.ready = "1"));
})();
