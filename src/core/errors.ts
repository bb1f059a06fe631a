/**
 * @module
 * Every error the loader raises on purpose, in one tree.
 *
 *     LoaderError
 *     ├── RegistryError
 *     │   ├── RegistryNotFound      the registry file does not exist
 *     │   ├── RegistryInvalid       malformed JSON, bad entries, duplicate names (lists every problem)
 *     │   ├── RegistryWriteError    disk full, read-only folder; the old file is intact
 *     │   └── LockTimeout           another writer holds the registry lock
 *     ├── RequestError              the caller asked for something malformed
 *     │   ├── InvalidName           a name that breaks the naming rules
 *     │   ├── UnknownCapability     a capability the loader has no name for
 *     │   ├── InvalidSample         a metrics sample that cannot be a measurement
 *     │   └── ImageError
 *     │       ├── NotAnImage        the bytes are not a PNG, JPEG, WebP or GIF that decodes
 *     │       ├── ImageTooLarge     over the byte or pixel limits
 *     │       └── ImagePathNotAllowed  outside the configured image roots
 *     ├── ModelNotFound             no entry by that name or alias
 *     ├── NoModelForRole            no entry can serve the role
 *     ├── MissingCapabilities       the model lacks required capabilities
 *     ├── IntegrityError
 *     │   ├── ArtifactsMissing      no model_path, or its files are not there
 *     │   ├── LockViolation         files differ from the lock (names changed/added/removed files)
 *     │   └── CorruptArtifact       a content-addressed blob does not hash to its own name
 *     └── BackendError              the model server could not be used
 *         ├── BackendUnavailable    connection refused, 5xx, auth, an unreadable answer
 *         ├── BackendTimeout        no answer within the timeout
 *         ├── ImagesRefused         the server refused the image (the model takes no images)
 *         ├── BackendNotServing     the server is up but does not list the model
 *         └── BackendNotReady       select's readiness check failed (wraps the reason)
 *
 * Each error has a stable machine `code` (the API puts it in `detail.error`), a message that says what
 * failed, where, and what to do next, and structured `details`. Core errors know nothing of HTTP status
 * or exit codes: `http/errors.ts` and `cli/errors.ts` each hold one mapping table.
 */

/** Extra fields that go beside `error` and `message` in an API error body. */
export type ErrorDetails = Record<string, unknown>

/** Base of every error raised on purpose; `message` is ready for a user. */
export class LoaderError extends Error {
	override name = 'LoaderError'
	readonly code: string = 'loader_error'
	readonly details: ErrorDetails

	constructor(message: string, details: ErrorDetails = {}) {
		super(message)
		this.details = details
	}

	/** The `detail` object of an API error body. */
	toJSON(): ErrorDetails {
		return { error: this.code, message: this.message, ...this.details }
	}
}

const plural = (n: number, one: string, many: string) => (n === 1 ? one : many)
const quoted = (s: string) => JSON.stringify(s)

// ---------------------------------------------------------------- registry

/** The registry file cannot be read or written. */
export class RegistryError extends LoaderError {
	override name = 'RegistryError'
	override readonly code: string = 'registry_error'
}

/** The registry file does not exist. */
export class RegistryNotFound extends RegistryError {
	override name = 'RegistryNotFound'
	override readonly code = 'registry_not_found'
	constructor(readonly path: string) {
		super(`Registry not found: ${path}. Pass --registry PATH or set IMAGEWORKS_REGISTRY`)
	}
}

/** The registry file is not valid; `problems` lists every problem, not only the first. */
export class RegistryInvalid extends RegistryError {
	override name = 'RegistryInvalid'
	override readonly code = 'registry_invalid'
	constructor(
		readonly path: string,
		readonly problems: string[]
	) {
		const listing = problems.map((p) => `  - ${p}`).join('\n')
		super(
			`Registry ${path} is invalid (${problems.length} ${plural(problems.length, 'problem', 'problems')}); ` +
				`nothing was changed. Fix the file and retry:\n${listing}`,
			{ problems }
		)
	}
}

/** Writing the registry (or its state database) failed; the previous file is left intact. */
export class RegistryWriteError extends RegistryError {
	override name = 'RegistryWriteError'
	override readonly code = 'registry_write_failed'
	constructor(
		readonly path: string,
		reason: string
	) {
		super(
			`Could not write ${path}: ${reason}. The previous file is intact; ` +
				'free disk space or fix the folder permissions and retry'
		)
	}
}

/** Another process held the registry's write lock for longer than the timeout. */
export class LockTimeout extends RegistryError {
	override name = 'LockTimeout'
	override readonly code = 'registry_busy'
	constructor(path: string, timeoutSeconds: number) {
		super(
			`Timed out after ${timeoutSeconds}s waiting for the write lock of ${path}: another ` +
				'imageworks-loader process is writing. Retry in a moment'
		)
	}
}

// ---------------------------------------------------------------- requests

/** The caller asked for something malformed. */
export class RequestError extends LoaderError {
	override name = 'RequestError'
	override readonly code: string = 'invalid_request'
}

/** A model name or alias that breaks the naming rules (never used to build a path). */
export class InvalidName extends RequestError {
	override name = 'InvalidName'
	override readonly code = 'invalid_name'
	constructor(value: string, reason: string) {
		super(
			`Invalid model name ${quoted(value)}: ${reason}. Names are 1-128 characters of letters, digits and ` +
				`". _ - : ( ) + @", not starting with "."`
		)
	}
}

/** A capability name the loader does not know, even as a synonym. */
export class UnknownCapability extends RequestError {
	override name = 'UnknownCapability'
	override readonly code = 'unknown_capability'
	readonly capabilities: string[]
	constructor(names: Iterable<string>, known: readonly string[]) {
		const unknown = [...new Set(names)].sort()
		super(
			`Unknown ${plural(unknown.length, 'capability', 'capabilities')}: ${unknown.join(', ')}. ` +
				`Known: ${[...known].sort().join(', ')}`,
			{ capabilities: unknown }
		)
		this.capabilities = unknown
	}
}

// ---------------------------------------------------------------- selection

/** No entry has this name or alias. */
export class ModelNotFound extends LoaderError {
	override name = 'ModelNotFound'
	override readonly code = 'model_not_found'
	constructor(
		readonly model: string,
		readonly suggestions: string[] = []
	) {
		const hint = suggestions.length ? ` Did you mean ${suggestions.map(quoted).join(' or ')}?` : ''
		super(`No model named ${quoted(model)} in the registry.${hint} Run "imageworks-loader list" to see them`, {
			name: model,
			suggestions
		})
	}
}

/** A candidate that a role selection passed over, and why. */
export interface Rejection {
	name: string
	reason: string
}

/** No non-deprecated entry lists the role with the required capabilities. */
export class NoModelForRole extends LoaderError {
	override name = 'NoModelForRole'
	override readonly code = 'no_model_for_role'
	constructor(
		readonly role: string,
		readonly rejected: Rejection[] = []
	) {
		const why = rejected.map((r) => `\n  - ${r.name}: ${r.reason}`).join('')
		super(
			`No model can serve role ${quoted(role)}.` +
				(why ? ` Candidates rejected:${why}` : ' No entry lists this role.') +
				"\nAdd the role to an entry's roles or relax the required capabilities",
			{ role, rejected }
		)
	}
}

/** The model lacks one or more required capabilities (all of them are named). */
export class MissingCapabilities extends LoaderError {
	override name = 'MissingCapabilities'
	override readonly code = 'missing_capabilities'
	constructor(
		readonly model: string,
		readonly missing: string[]
	) {
		super(
			`Model ${quoted(model)} lacks required ${plural(missing.length, 'capability', 'capabilities')}: ` +
				`${missing.join(', ')}. Choose another model or select by role`,
			{ name: model, missing }
		)
	}
}

// ---------------------------------------------------------------- integrity

/** The model's files cannot be trusted. */
export class IntegrityError extends LoaderError {
	override name = 'IntegrityError'
	override readonly code: string = 'integrity_error'
}

/** The entry has no usable `backend_config.model_path`, or its files are not there. */
export class ArtifactsMissing extends IntegrityError {
	override name = 'ArtifactsMissing'
	override readonly code = 'artifacts_missing'
	constructor(
		readonly model: string,
		readonly reason: string
	) {
		super(`Cannot check the files of ${quoted(model)}: ${reason}`, { name: model })
	}
}

/** Which files changed, appeared or disappeared. */
export interface FileChanges {
	changed: string[]
	added: string[]
	removed: string[]
}

/** Options of a {@link LockViolation}: the file diff and/or a reason, the hashes, the next step. */
export interface LockViolationOptions extends Partial<FileChanges> {
	reason?: string
	expected?: string | null
	actual?: string | null
	hint?: string
}

/** Files differ from what the lock or the last verify recorded. */
export class LockViolation extends IntegrityError {
	override name = 'LockViolation'
	override readonly code = 'lock_violation'
	readonly changes: FileChanges
	constructor(
		readonly model: string,
		options: LockViolationOptions
	) {
		const changes: FileChanges = {
			changed: [...(options.changed ?? [])].sort(),
			added: [...(options.added ?? [])].sort(),
			removed: [...(options.removed ?? [])].sort()
		}
		const parts: string[] = []
		for (const label of ['changed', 'added', 'removed'] as const) {
			const files = changes[label]
			if (files.length) {
				const more = files.length > 10 ? ` (+${files.length - 10} more)` : ''
				parts.push(`${label}: ${files.slice(0, 10).join(', ')}${more}`)
			}
		}
		const what = parts.join('; ') || options.reason || 'files differ'
		const sums =
			options.expected && options.actual
				? ` Expected aggregate sha256 ${options.expected}, got ${options.actual}.`
				: ''
		const hint = options.hint ?? `Run "imageworks-loader verify ${model}" to re-check the files`
		super(`Model ${quoted(model)} is locked and its files do not match: ${what}.${sums} ${hint}`, {
			name: model,
			...changes,
			expected_aggregate_sha256: options.expected ?? null,
			actual_aggregate_sha256: options.actual ?? null
		})
		this.changes = changes
	}
}

/** One content-addressed file whose bytes do not hash to its name. */
export interface CorruptFile {
	path: string
	expected: string
	actual: string
}

/** A content-addressed file (HF blob, Ollama `sha256-…` blob) does not hash to its name. */
export class CorruptArtifact extends IntegrityError {
	override name = 'CorruptArtifact'
	override readonly code = 'corrupt_artifact'
	constructor(
		readonly model: string,
		readonly corrupt: CorruptFile[]
	) {
		const lines = corrupt.map((c) => `${c.path}: expected sha256 ${c.expected}, got ${c.actual}`).join('; ')
		super(`Model ${quoted(model)} has corrupt content-addressed files: ${lines}. Download them again`, {
			name: model,
			corrupt
		})
	}
}

// ---------------------------------------------------------------- samples and images

/** A metrics sample that cannot be a real measurement (negative, ttft after the end, ...). */
export class InvalidSample extends RequestError {
	override name = 'InvalidSample'
	override readonly code = 'invalid_sample'
	constructor(readonly problems: string[]) {
		super(
			`Invalid metrics sample: ${problems.join('; ')}. Send ttft_ms <= duration_ms in milliseconds and a ` +
				'non-negative integer tokens_generated',
			{ problems }
		)
	}
}

/** The caller's image cannot be used. */
export class ImageError extends RequestError {
	override name = 'ImageError'
	override readonly code: string = 'invalid_image'
}

/** The bytes are not an image the loader can send (PNG, JPEG, WebP or GIF that decodes). */
export class NotAnImage extends ImageError {
	override name = 'NotAnImage'
	override readonly code = 'not_an_image'
	constructor(where: string, reason = '') {
		super(`${where} is not a readable image${reason ? `: ${reason}` : ''}. Send a PNG, JPEG, WebP or GIF file`)
	}
}

/** The image is over the byte or pixel limit. */
export class ImageTooLarge extends ImageError {
	override name = 'ImageTooLarge'
	override readonly code = 'image_too_large'
	constructor(where: string, reason: string) {
		super(`${where} is too large: ${reason}. Downscale or recompress it first`)
	}
}

/** `image_path` resolves outside every configured image root. */
export class ImagePathNotAllowed extends ImageError {
	override name = 'ImagePathNotAllowed'
	override readonly code = 'image_path_not_allowed'
	constructor() {
		super(
			'image_path is outside the server image roots. Put the image under an image root ' +
				'(IMAGEWORKS_IMAGE_ROOTS) or send it as image_b64'
		)
	}
}

// ---------------------------------------------------------------- backends

/** The model server could not be used. */
export class BackendError extends LoaderError {
	override name = 'BackendError'
	override readonly code: string = 'backend_error'
}

/** Connection refused, DNS failure, 5xx, auth, or an answer that is not the OpenAI protocol. */
export class BackendUnavailable extends BackendError {
	override name = 'BackendUnavailable'
	override readonly code = 'backend_unavailable'
	constructor(
		readonly endpoint: string,
		readonly reason: string
	) {
		super(`Backend ${endpoint} is unavailable: ${reason}. Start the model server or check its host and port in the registry`, {
			endpoint
		})
	}
}

/** The backend accepted the connection but did not answer in time. */
export class BackendTimeout extends BackendError {
	override name = 'BackendTimeout'
	override readonly code = 'backend_timeout'
	constructor(
		readonly endpoint: string,
		timeoutSeconds: number
	) {
		super(
			`Backend ${endpoint} did not answer within ${timeoutSeconds}s. Check that it is not overloaded or raise ` +
				'the timeout (IMAGEWORKS_PROBE_TIMEOUT, --timeout)',
			{ endpoint }
		)
	}
}

/** The backend answered 4xx with an error about images: the model does not take image input (conclusive). */
export class ImagesRefused extends BackendError {
	override name = 'ImagesRefused'
	override readonly code = 'images_refused'
	constructor(
		readonly endpoint: string,
		readonly status: number,
		readonly text: string
	) {
		super(`Backend ${endpoint} refused the image (HTTP ${status}): ${text.slice(0, 200)}`, { endpoint })
	}
}

/** The backend answers but does not list the model's internal id. */
export class BackendNotServing extends BackendError {
	override name = 'BackendNotServing'
	override readonly code = 'backend_not_serving'
	constructor(endpoint: string, modelId: string, served: string[]) {
		const shown = [...served].sort().slice(0, 10).join(', ') || 'none'
		super(
			`Backend ${endpoint} is up but does not serve ${quoted(modelId)} (it serves: ${shown}). Load the model on ` +
				'the server or fix served_model_id in the registry',
			{ endpoint, internal_model_id: modelId }
		)
	}
}

/** `select` with a readiness check: the model's backend is down or does not serve it. */
export class BackendNotReady extends BackendError {
	override name = 'BackendNotReady'
	override readonly code = 'backend_not_ready'
	constructor(
		readonly model: string,
		readonly underlying: BackendError
	) {
		super(`Model ${quoted(model)} was selected but its backend is not ready: ${underlying.message}`, {
			name: model,
			reason: underlying.code
		})
	}
}
