// The package's worker protocol, bundled by Vite as a module worker.
import "realdenoise/worker";
