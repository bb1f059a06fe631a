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
 *     │   └── UnknownCapability     a capability the loader has no name for
 *     ├── ModelNotFound             no entry by that name or alias
 *     ├── NoModelForRole            no entry can serve the role
 *     ├── MissingCapabilities       the model lacks required capabilities
 *     └── IntegrityError
 *         ├── ArtifactsMissing      no model_path, or its files are not there
 *         ├── LockViolation         files differ from the lock (names changed/added/removed files)
 *         └── CorruptArtifact       a content-addressed blob does not hash to its own name
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

/** True for any error raised on purpose by the loader (works across module copies). */
export function isLoaderError(error: unknown): error is LoaderError {
	return error instanceof LoaderError
}
