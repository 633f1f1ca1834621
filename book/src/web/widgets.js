// The book's live widgets: chapter 1's game on points in the plane and chapter 5's trained
// generator, computed in the reader's browser by the course's own Rust code compiled to
// WebAssembly (web/src/lib.rs; built into this folder by scripts/build-web.sh).
//
// A page asks for a widget with <div class="logogan-widget" data-widget="gan2d|generator">.
// Without the WebAssembly files (a book built without scripts/build-web.sh) each widget says so.
// With #selftest in the page's address, the widgets are clicked, checked and timed, and the
// results are written into the page as JSON (<pre id="logogan-selftest">), which
// scripts/check_book_browser.py reads in headless Chromium.

const HERE = new URL(".", import.meta.url);
const SELFTEST = location.hash === "#selftest";

// The bytes at `name` beside this file, or an error that names the file.
async function fetchHere(name) {
  const response = await fetch(new URL(name, HERE));
  if (!response.ok) throw new Error(`web/${name}: HTTP ${response.status} (run scripts/build-web.sh)`);
  return response;
}

async function loadWasm() {
  const started = performance.now();
  const wasm = await import(new URL("logogan_web.js", HERE).href);
  await wasm.default({ module_or_path: new URL("logogan_web_bg.wasm", HERE) });
  return { wasm, loadMs: performance.now() - started };
}

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "onclick" || key === "oninput") node[key] = value;
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

function button(label, onclick) {
  return element("button", { type: "button", class: "logogan-button", onclick }, label);
}

// A slider with its label and current value; `format` shows the value.
function slider(label, { min, max, step, value }, format, oninput) {
  const shown = element("span", { class: "logogan-value" }, format(value));
  const input = element("input", { type: "range", min, max, step, value });
  input.oninput = () => {
    shown.textContent = format(Number(input.value));
    oninput(Number(input.value));
  };
  return { input, node: element("label", { class: "logogan-slider" }, label, " ", input, " ", shown) };
}

// A hash of a canvas's pixels: the self-test's "did the picture change?".
function pixelHash(canvas) {
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let hash = 2166136261;
  for (let i = 0; i < data.length; i++) hash = Math.imul(hash ^ data[i], 16777619) >>> 0;
  return hash;
}

// ---------------------------------------------------------------------------------------------
// Chapter 1: the game in the plane, trained live.

function gan2dWidget(root, wasm) {
  const SIZE = 360, GRID = 60, POINTS = 500;
  let lr = 0.005, seed = 0;
  let game = new wasm.Game2d(lr, seed);
  let timer = null; // the pending round of play, while playing
  const canvas = element("canvas", { width: SIZE, height: SIZE, class: "logogan-canvas" });
  const status = element("div", { class: "logogan-status" });
  const extent = game.radius * 1.5;
  const real = game.real(POINTS, 1);

  function draw(losses) {
    const context = canvas.getContext("2d");
    // D's verdict as the background: white where it says "fake", blue where it says "real".
    const surface = game.decisionSurface(GRID, extent);
    const cell = SIZE / GRID;
    for (let row = 0; row < GRID; row++) {
      for (let column = 0; column < GRID; column++) {
        const p = surface[row * GRID + column];
        context.fillStyle = `rgb(${255 - 150 * p}, ${255 - 90 * p}, 255)`;
        context.fillRect(column * cell, row * cell, cell + 1, cell + 1);
      }
    }
    const toCanvas = (x, y) => [((x + extent) / (2 * extent)) * SIZE, ((extent - y) / (2 * extent)) * SIZE];
    const dots = (points, colour) => {
      context.fillStyle = colour;
      for (let i = 0; i < points.length; i += 2) {
        const [cx, cy] = toCanvas(points[i], points[i + 1]);
        context.fillRect(cx - 1.5, cy - 1.5, 3, 3);
      }
    };
    dots(real, "rgba(90, 90, 90, 0.6)");
    dots(game.fake(POINTS, 2), "rgba(230, 120, 20, 0.9)");
    const [d, g] = losses ?? [NaN, NaN];
    status.textContent =
      `step ${game.step} · learning rate ${lr} · D loss ${d.toFixed(3)} · G loss ${g.toFixed(3)}` +
      ` · blobs covered ${game.blobsCovered()} of ${game.blobs}`;
  }

  function play(steps) {
    draw(game.play(steps));
  }
  function loop() {
    play(10);
    timer = setTimeout(loop, 0);
  }
  function reset() {
    game.free();
    game = new wasm.Game2d(lr, seed);
    draw();
  }
  const playButton = button("Play", () => {
    if (timer === null) {
      timer = setTimeout(loop, 0); // one loop at a time, however fast the clicks
      playButton.textContent = "Pause";
    } else {
      clearTimeout(timer);
      timer = null;
      playButton.textContent = "Play";
    }
  });
  const rate = slider("learning rate", { min: -4, max: -1, step: 0.05, value: Math.log10(lr) },
    (v) => (10 ** v).toPrecision(2), (v) => {
      lr = Number((10 ** v).toPrecision(2));
      game.setLearningRate(lr);
    });
  const newGame = button("New game", () => { seed += 1; reset(); });
  const collapse = button("Collapse it (lr 0.05, new game)", () => {
    lr = 0.05;
    seed = 1;
    rate.input.value = Math.log10(lr);
    rate.input.oninput();
    reset();
  });
  root.replaceChildren(
    canvas,
    element("div", { class: "logogan-controls" }, playButton, button("100 steps", () => play(100)),
      newGame, collapse),
    rate.node,
    status,
  );
  draw();

  return async function selftest() {
    // Each control, pressed in turn, must change the picture (or the game) it controls.
    const changes = {};
    let hash = pixelHash(canvas);
    const changed = () => {
      const now = pixelHash(canvas);
      const moved = now !== hash;
      hash = now;
      return moved;
    };
    playButton.click();
    await new Promise((resolve) => setTimeout(resolve, 300));
    playButton.click(); // pause
    const stepsPlayed = game.step;
    changes.play = changed() && stepsPlayed > 0;
    const paused = game.step;
    await new Promise((resolve) => setTimeout(resolve, 100));
    changes.pause = game.step === paused;
    const started = performance.now();
    play(100);
    const msPerStep = (performance.now() - started) / 100;
    changes.hundred_steps = changed() && game.step === paused + 100;
    rate.input.value = -2;
    rate.input.oninput();
    changes.learning_rate = lr === 0.01;
    newGame.click();
    changes.new_game = changed() && game.step === 0;
    collapse.click();
    play(500);
    changes.collapse = lr === 0.05 && seed === 1 && changed();
    return {
      widget: "gan2d",
      changes,
      steps_played: stepsPlayed,
      ms_per_step: msPerStep,
      blobs_covered_after_collapse: game.blobsCovered(),
    };
  };
}

// ---------------------------------------------------------------------------------------------
// Chapter 5: the trained generator.

function drawImages(canvas, rgba, size, columns, scale) {
  const context = canvas.getContext("2d");
  context.imageSmoothingEnabled = false;
  const count = rgba.length / (size * size * 4);
  const tile = document.createElement("canvas");
  tile.width = tile.height = size;
  const tileContext = tile.getContext("2d");
  for (let i = 0; i < count; i++) {
    const pixels = new ImageData(new Uint8ClampedArray(rgba.buffer, rgba.byteOffset + i * size * size * 4, size * size * 4), size, size);
    tileContext.putImageData(pixels, 0, 0);
    const x = (i % columns) * size * scale, y = Math.floor(i / columns) * size * scale;
    context.drawImage(tile, x, y, size * scale, size * scale);
  }
}

async function generatorWidget(root, wasm) {
  const bytes = new Uint8Array(await (await fetchHere("generator.safetensors")).arrayBuffer());
  const g = new wasm.LogoGenerator(bytes);
  const size = g.imageSize, dim = g.latentDim;
  const COLUMNS = 8, ROWS = 4, SCALE = 3, BIG = 6, FRAMES = 8;
  let gridSeed = 0, logoSeed = 1, pickA = 3, pickB = 7;
  const timing = { samples: 0, ms: 0 };
  const render = (latents) => {
    const started = performance.now();
    const rgba = g.render(latents);
    timing.ms += performance.now() - started;
    timing.samples += latents.length / dim;
    return rgba;
  };

  const grid = element("canvas", { width: COLUMNS * size * SCALE, height: ROWS * size * SCALE, class: "logogan-canvas" });
  const logo = element("canvas", { width: size * BIG, height: size * BIG, class: "logogan-canvas" });
  const strip = element("canvas", { width: FRAMES * size * SCALE, height: size * SCALE, class: "logogan-canvas" });
  const status = element("div", { class: "logogan-status" });

  const drawGrid = () => drawImages(grid, render(g.noise(COLUMNS * ROWS, gridSeed)), size, COLUMNS, SCALE);
  const offsets = new Array(g.directionCount).fill(0);
  const drawLogo = () => {
    const z = g.noise(1, logoSeed);
    offsets.forEach((amount, i) => {
      const direction = g.direction(i);
      for (let j = 0; j < dim; j++) z[j] += amount * direction[j];
    });
    drawImages(logo, render(z), size, 1, BIG);
  };
  const drawStrip = () => {
    const a = g.noise(1, pickA), b = g.noise(1, pickB);
    const latents = new Float32Array(FRAMES * dim);
    for (let f = 0; f < FRAMES; f++) latents.set(wasm.slerp(a, b, f / (FRAMES - 1)), f * dim);
    drawImages(strip, render(latents), size, FRAMES, SCALE);
  };
  const say = () => {
    status.textContent = `grid seed ${gridSeed} · logo seed ${logoSeed} · interpolation ${pickA} → ${pickB}` +
      ` · ${(timing.ms / Math.max(1, timing.samples)).toFixed(2)} ms per image in this browser`;
  };
  const sliders = offsets.map((_, i) => slider(`direction ${i + 1}`, { min: -3, max: 3, step: 0.1, value: 0 },
    (v) => v.toFixed(1), (v) => { offsets[i] = v; drawLogo(); say(); }));
  const newGrid = button("New grid", () => { gridSeed += 1; drawGrid(); say(); });
  const newLogo = button("New logo", () => { logoSeed += 1; drawLogo(); say(); });
  const newPicks = button("New pair", () => { pickA += 2; pickB += 2; drawStrip(); say(); });
  root.replaceChildren(
    element("div", { class: "logogan-controls" }, newGrid), grid,
    element("div", { class: "logogan-row" }, logo,
      element("div", { class: "logogan-column" }, newLogo, ...sliders.map((s) => s.node))),
    element("div", { class: "logogan-controls" }, newPicks, " the great circle from one pick to another"), strip,
    status,
  );
  drawGrid();
  drawLogo();
  drawStrip();
  say();

  return async function selftest() {
    const reference = await (await fetchHere("reference.json")).json();
    const latents = new Float32Array(reference.latents);
    // The numbers G computes here against the native ones...
    const images = g.sample(latents);
    let largest = 0;
    for (let i = 0; i < images.length; i++) largest = Math.max(largest, Math.abs(images[i] - reference.images[i]));
    // ... and the pixels drawn from them against the bytes the binaries save (RGB; a value on a
    // rounding edge may land one level off).
    const rgba = g.render(latents);
    let pixelsOff = 0, pixelsCompared = 0;
    for (let i = 0, j = 0; i < rgba.length; i += 4) {
      for (let c = 0; c < 3; c++, j++) {
        pixelsCompared++;
        if (Math.abs(rgba[i + c] - reference.pixels[j]) > 1) pixelsOff++;
      }
    }
    // Each control, pressed in turn, must change its own picture.
    const hashes = () => ({ grid: pixelHash(grid), logo: pixelHash(logo), strip: pixelHash(strip) });
    let before = hashes();
    const pressed = (action, canvas) => {
      action();
      const after = hashes();
      const moved = after[canvas] !== before[canvas];
      before = after;
      return moved;
    };
    const changes = {
      new_grid: pressed(() => newGrid.click(), "grid"),
      new_logo: pressed(() => newLogo.click(), "logo"),
      new_pair: pressed(() => newPicks.click(), "strip"),
    };
    sliders.forEach((slider, i) => {
      changes[`direction_${i + 1}`] = pressed(() => { slider.input.value = 2; slider.input.oninput(); }, "logo");
    });
    const started = performance.now();
    g.render(g.noise(64, 99));
    return {
      widget: "generator",
      reference_values: reference.images.length,
      values_compared: images.length,
      largest_difference_from_native: largest,
      pixels_compared: pixelsCompared,
      reference_pixels: reference.pixels.length,
      pixels_more_than_one_level_off: pixelsOff,
      changes,
      ms_per_image: (performance.now() - started) / 64,
    };
  };
}

// ---------------------------------------------------------------------------------------------

const WIDGETS = { gan2d: gan2dWidget, generator: generatorWidget };

const STYLE = `
.logogan-widget { margin: 1em 0; padding: 0.8em; border: 1px solid var(--table-border-color, #ccc); border-radius: 6px; }
.logogan-canvas { display: block; margin: 0.4em 0; image-rendering: pixelated; max-width: 100%; }
.logogan-controls, .logogan-row { display: flex; flex-wrap: wrap; gap: 0.5em; align-items: center; }
.logogan-column { display: flex; flex-direction: column; gap: 0.3em; }
.logogan-button { padding: 0.2em 0.7em; }
.logogan-slider { display: block; font-size: 0.9em; }
.logogan-status { font-size: 0.85em; opacity: 0.8; }
.logogan-missing { font-style: italic; }`;

async function main() {
  const roots = [...document.querySelectorAll(".logogan-widget")];
  if (roots.length === 0) return;
  document.head.append(element("style", {}, STYLE));
  const results = { widgets: [] };
  let loaded;
  try {
    loaded = await loadWasm();
    results.load_ms = loaded.loadMs;
  } catch (error) {
    for (const root of roots) {
      root.replaceChildren(element("p", { class: "logogan-missing" },
        "This live widget runs the course's code compiled to WebAssembly, and this build of the " +
        "book does not have it: run scripts/build-web.sh, then build the book again. (" + error + ")"));
    }
    results.error = String(error);
  }
  if (loaded) {
    for (const root of roots) {
      const make = WIDGETS[root.dataset.widget];
      try {
        if (!make) throw new Error(`no widget named "${root.dataset.widget}"`);
        const selftest = await make(root, loaded.wasm);
        if (SELFTEST) results.widgets.push(await selftest());
      } catch (error) {
        root.replaceChildren(element("p", { class: "logogan-missing" }, `The widget failed: ${error}`));
        results.widgets.push({ widget: root.dataset.widget, error: String(error) });
      }
    }
  }
  if (SELFTEST) document.body.append(element("pre", { id: "logogan-selftest" }, JSON.stringify(results)));
}

main();
