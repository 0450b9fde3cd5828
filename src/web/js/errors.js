// realdenoise's error classes. Every rejection of the package is one of
// these (`error.name` is the class name), also when it crossed a worker:
// realdenoise/worker-client re-creates them from the worker's
// `{ name, message }` replies, so `instanceof` works on both sides.

class RealdenoiseError extends Error {
  constructor(message, options) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** An argument of the wrong type or out of range; a disposed Denoiser. */
export class InputError extends RealdenoiseError {}
/** Weights that cannot be fetched, read or used. */
export class WeightsError extends RealdenoiseError {}
/** The AbortSignal was aborted (before or during the call). */
export class AbortError extends RealdenoiseError {}
/** `backend: "webgpu"` without a WebGPU adapter. */
export class WebGpuUnavailableError extends RealdenoiseError {}
/** No WebAssembly SIMD in this browser. */
export class UnsupportedBrowserError extends RealdenoiseError {}
/** The GPU runtime failed. */
export class BackendError extends RealdenoiseError {}
/** The WebAssembly module could not start, or crashed (see `cause`). */
export class InternalError extends RealdenoiseError {}

/** The error classes by `name`. */
export const ERROR_CLASSES = Object.freeze({
  InputError, WeightsError, AbortError, WebGpuUnavailableError, UnsupportedBrowserError, BackendError, InternalError,
});

/**
 * An instance of the class named `name` (an `Error` with that name when the
 * name is not one of the package's).
 */
export function namedError(name, message, cause) {
  const options = cause !== undefined ? { cause } : undefined;
  const Class = Object.hasOwn(ERROR_CLASSES, name) ? ERROR_CLASSES[name] : null;
  if (Class) return new Class(message, options);
  const error = new Error(message, options);
  error.name = typeof name === "string" ? name : "Error";
  return error;
}
