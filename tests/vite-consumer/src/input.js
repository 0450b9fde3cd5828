// A deterministic noisy test image: a smooth gradient plus pseudo-random
// noise, with an alpha ramp so alpha pass-through can be checked.
export function makeInput(width, height, seed = 1) {
  const data = new Uint8ClampedArray(width * height * 4);
  let state = seed >>> 0;
  const random = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 4;
      const base = [(255 * x) / width, (255 * y) / height, 128];
      for (let c = 0; c < 3; c++) data[i + c] = base[c] + (random() - 0.5) * 80;
      data[i + 3] = 255 - ((x + y) % 64);
    }
  }
  return { data, width, height };
}
