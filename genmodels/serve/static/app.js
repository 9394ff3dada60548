// The page of `genmodels serve`: a digit editor, completions from the model, the 15-digit
// game. It talks to the JSON API of genmodels/serve/server.py and keeps its state in
// `window.genmodels` (scripts and the browser test read it).
"use strict";

const MISSING = [128, 128, 128];  // erased pixels are drawn grey, as in the course's figure
const state = {
  info: null,       // GET /api/info
  image: null,      // Float32Array(C·H·W) in [0, 1], row by row
  mask: null,       // Uint8Array(H·W): 1 observed, 0 missing
  last: null,       // the last answer of POST /api/inpaint
  game: null,       // GET /api/game
  gameAnswer: null, // POST /api/game
};
window.genmodels = state;

const $ = (id) => document.getElementById(id);

async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)};
  const response = await fetch(path, options);
  const answer = await response.json();
  if (!response.ok) throw new Error(answer.error || `${response.status} ${response.statusText}`);
  return answer;
}

function showError(err) {
  const box = $("error");
  box.textContent = err ? String(err.message || err) : "";
  box.hidden = !err;
}

async function busy(button, work) {
  button.disabled = true;
  showError(null);
  try { await work(); } catch (err) { showError(err); } finally { button.disabled = false; }
}

// --- drawing images ----------------------------------------------------------------------
function paint(canvas, image, mask, scale) {
  const [channels, height, width] = state.info.shape;
  canvas.width = width * scale;
  canvas.height = height * scale;
  const context = canvas.getContext("2d");
  const pixels = context.createImageData(width, height);
  for (let i = 0; i < height * width; i++) {
    let rgb;
    if (mask && !mask[i]) rgb = MISSING;
    else if (channels === 1) rgb = Array(3).fill(Math.round(255 * image[i]));
    else rgb = [0, 1, 2].map((c) => Math.round(255 * image[c * height * width + i]));
    pixels.data.set([...rgb, 255], 4 * i);
  }
  const small = document.createElement("canvas");
  small.width = width;
  small.height = height;
  small.getContext("2d").putImageData(pixels, 0, 0);
  context.imageSmoothingEnabled = false;
  context.drawImage(small, 0, 0, canvas.width, canvas.height);
  return canvas;
}

function drawEditor() {
  paint($("editor"), state.image, state.mask, 10);
}

function editAt(event) {
  const [channels, height, width] = state.info.shape;
  const box = $("editor").getBoundingClientRect();
  const column = Math.floor((event.clientX - box.left) / box.width * width);
  const row = Math.floor((event.clientY - box.top) / box.height * height);
  const radius = Number($("brush").value) - 1;
  const tool = document.querySelector("input[name=tool]:checked").value;
  for (let r = row - radius; r <= row + radius; r++) {
    for (let c = column - radius; c <= column + radius; c++) {
      if (r < 0 || r >= height || c < 0 || c >= width) continue;
      const i = r * width + c;
      if (tool === "erase") state.mask[i] = 0;
      else {
        state.mask[i] = 1;
        if (tool === "draw") for (let k = 0; k < channels; k++) state.image[k * height * width + i] = 1;
      }
    }
  }
  drawEditor();
}

function setupEditor() {
  const editor = $("editor");
  let down = false;
  editor.addEventListener("pointerdown", (event) => {
    down = true;
    editor.setPointerCapture(event.pointerId);
    editAt(event);
  });
  editor.addEventListener("pointermove", (event) => { if (down) editAt(event); });
  editor.addEventListener("pointerup", () => { down = false; });
  editor.addEventListener("pointercancel", () => { down = false; });
}

// --- inpainting ---------------------------------------------------------------------------
async function loadTestDigit() {
  const index = Math.floor(Math.random() * state.info.test_images);
  const digit = await api(`/api/digit?index=${index}`);
  state.image = Float32Array.from(digit.image);
  state.mask.fill(1);
  $("digit-info").textContent = `test image ${digit.index}` +
    (digit.label === null ? "" : `, labelled ${digit.label}`);
  drawEditor();
}

async function applyMask() {
  const seed = Math.floor(Math.random() * 1e6);  // a new draw of the random kinds each time
  const answer = await api(`/api/mask?kind=${encodeURIComponent($("mask-kind").value)}&seed=${seed}`);
  state.mask = Uint8Array.from(answer.mask);
  drawEditor();
}

function caption(top) {
  return top ? `${top.class} · ${Math.round(100 * top.probability)}%` : "";
}

async function complete() {
  const answer = await api("/api/inpaint", {
    image: Array.from(state.image), mask: Array.from(state.mask),
    method: $("method").value, samples: Number($("samples").value),
  });
  state.last = answer;
  const grid = $("completions");
  grid.replaceChildren(...answer.completions.map((image, s) => {
    const figure = document.createElement("figure");
    figure.className = "completion";
    figure.append(paint(document.createElement("canvas"), image, null, 3));
    const text = document.createElement("figcaption");
    text.textContent = caption(answer.top && answer.top[s]);
    figure.append(text);
    return figure;
  }));
  const votes = answer.top ? answer.top.filter((t) => t.class === answer.guess).length : 0;
  $("summary").textContent = (answer.guess === null ? "" :
    `The model's guess: ${answer.guess} (${votes} of ${answer.samples} completions). `) +
    `${answer.samples} completions by ${answer.method} in ${answer.seconds.toFixed(2)} s.`;
}

// --- the game -----------------------------------------------------------------------------
async function newGame() {
  const seed = Number($("seed").value);
  state.game = await api(`/api/game?seed=${seed}&mask=${encodeURIComponent($("game-mask").value)}`);
  state.gameAnswer = null;
  $("score").textContent = "";
  $("game").replaceChildren(...state.game.digits.map((digit, i) => {
    const card = document.createElement("div");
    card.className = "card";
    card.append(paint(document.createElement("canvas"), digit.image, digit.mask, 3));
    const guess = document.createElement("input");
    guess.className = "guess";
    guess.maxLength = 1;
    guess.inputMode = "numeric";
    guess.setAttribute("aria-label", `your guess for digit ${i + 1}`);
    const answer = document.createElement("div");
    answer.className = "answer";
    card.append(guess, answer);
    return card;
  }));
}

async function checkGuesses() {
  if (!state.game) await newGame();
  const inputs = [...document.querySelectorAll("#game .guess")];
  const guesses = inputs.map((input) => /^[0-9]$/.test(input.value) ? Number(input.value) : null);
  const result = await api("/api/game", {seed: state.game.seed, mask: state.game.mask, guesses});
  state.gameAnswer = result;
  [...document.querySelectorAll("#game .card")].forEach((card, i) => {
    const truth = result.truth[i];
    const mark = (guess) => guess === truth ? "right" : "wrong";
    const answer = card.querySelector(".answer");
    answer.innerHTML = "";
    const you = document.createElement("div");
    you.className = mark(guesses[i]);
    you.textContent = `you ${guesses[i] === null ? "–" : guesses[i]}`;
    const model = document.createElement("div");
    model.className = mark(result.model_guesses[i]);
    model.textContent = `model ${result.model_guesses[i]} · truth ${truth}`;
    const strip = document.createElement("div");
    strip.className = "strip";
    strip.append(...result.completions[i].slice(0, 4).map(
      (image) => paint(document.createElement("canvas"), image, null, 1)));
    answer.append(you, model, strip);
  });
  $("score").textContent = `You: ${result.person_score} / ${result.digits} · ` +
    `the model: ${result.model_score} / ${result.digits}`;
}

// --- start ---------------------------------------------------------------------------------
function showView(name) {
  for (const view of ["inpaint", "game"]) {
    $(`view-${view}`).hidden = view !== name;
    $(`tab-${view}`).classList.toggle("active", view === name);
  }
  if (name === "game" && !state.game) busy($("new-game"), newGame);
}

function options(select, values, chosen) {
  select.replaceChildren(...values.map((value) => {
    const option = document.createElement("option");
    option.value = option.textContent = value;
    option.selected = value === chosen;
    return option;
  }));
}

async function start() {
  state.info = await api("/api/info");
  const [channels, height, width] = state.info.shape;
  $("model").textContent = `${state.info.kind} model of ${channels}×${height}×${width} ` +
    `images; ${state.info.classifier ? "the shipped classifier reads the completions" : "no classifier for this data"}`;
  state.image = new Float32Array(channels * height * width);
  state.mask = new Uint8Array(height * width).fill(1);
  options($("method"), state.info.methods, state.info.default_method);
  options($("mask-kind"), state.info.masks, "top");
  options($("game-mask"), state.info.masks, "top");
  $("samples").max = state.info.max_samples;
  setupEditor();
  for (const tab of document.querySelectorAll(".tab")) {
    tab.addEventListener("click", () => showView(tab.dataset.view));
  }
  $("test-digit").addEventListener("click", (e) => busy(e.target, loadTestDigit));
  $("clear").addEventListener("click", () => {
    state.image.fill(0);
    state.mask.fill(1);
    $("digit-info").textContent = "";
    drawEditor();
  });
  $("unerase").addEventListener("click", () => { state.mask.fill(1); drawEditor(); });
  $("apply-mask").addEventListener("click", (e) => busy(e.target, applyMask));
  $("complete").addEventListener("click", (e) => busy(e.target, complete));
  $("new-game").addEventListener("click", (e) => busy(e.target, newGame));
  $("check").addEventListener("click", (e) => busy(e.target, checkGuesses));
  await loadTestDigit();
  document.body.dataset.ready = "true";
}

start().catch(showError);
