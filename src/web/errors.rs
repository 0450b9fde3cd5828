//! JavaScript `Error`s with the names the package documents.

use wasm_bindgen::JsValue;

pub enum ErrorName {
    Weights,
    Input,
    Abort,
    Backend,
    WebGpuUnavailable,
    Internal,
}

impl ErrorName {
    fn as_str(&self) -> &'static str {
        match self {
            ErrorName::Weights => "WeightsError",
            ErrorName::Input => "InputError",
            ErrorName::Abort => "AbortError",
            ErrorName::Backend => "BackendError",
            ErrorName::WebGpuUnavailable => "WebGpuUnavailableError",
            ErrorName::Internal => "InternalError",
        }
    }
}

pub fn js_error(name: ErrorName, message: &str) -> JsValue {
    let error = js_sys::Error::new(message);
    error.set_name(name.as_str());
    error.into()
}
