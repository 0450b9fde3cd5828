export type Backend = "webgpu" | "cpu";
export type Sampler = "improved" | "origin";

export interface Progress {
  stage: "init" | "weights" | "model" | "ready" | "denoise";
  step?: number;
  steps?: number;
  tile?: number;
  tiles?: number;
  /** 0..1 */
  fraction: number;
}

export interface ModelInfo {
  architecture: string;
  parameters: number;
  timesteps: number;
  defaultSteps: number;
  defaultSampler: Sampler;
  trained: boolean;
  gflopsPerMegapixelPerStep: number;
  model: Record<string, unknown>;
  training: Record<string, unknown>;
}

export interface LoadOptions {
  /** Weights file; default: the package's bundled weights. */
  weights?: string | URL | ArrayBuffer | Uint8Array;
  /** "auto" = WebGPU when an adapter exists, else CPU. */
  backend?: "auto" | Backend;
  onProgress?: (progress: Progress) => void;
}

export interface RgbaPixels {
  data: Uint8Array | Uint8ClampedArray;
  width: number;
  height: number;
}

export type ImageInput = ImageData | ImageBitmap | HTMLCanvasElement | OffscreenCanvas | RgbaPixels;

export interface DenoiseOptions {
  steps?: number;
  sampler?: Sampler;
  /** 0 = untouched .. 1 = full denoising. */
  strength?: number;
  /** Tile side in pixels; default from the memory budget. */
  tileSize?: number;
  onProgress?: (progress: Progress) => void;
  signal?: AbortSignal;
}

export declare class Denoiser {
  static load(options?: LoadOptions): Promise<Denoiser>;
  readonly backend: Backend;
  readonly info: Readonly<ModelInfo>;
  denoise(image: ImageInput, options?: DenoiseOptions): Promise<ImageData>;
  dispose(): void;
  [Symbol.dispose](): void;
}
