/**
 * @module
 * The use cases both adapters call: list, select, verify, lock, unlock. One function per use case over
 * an injected {@link Deps}; nothing here prints, reads the environment or knows about HTTP.
 */
import { homedir } from 'node:os'
import { dirname, isAbsolute, resolve } from 'node:path'
import { parseRequired } from './capabilities.ts'
import {
	capabilitiesOf,
	isDeprecated,
	isLocked,
	lockReference,
	recordedFiles,
	rolesOf,
	visionOk,
	ensureBlock
} from './entry.ts'
import {
	ArtifactsMissing,
	BackendError,
	BackendNotReady,
	CorruptArtifact,
	type CorruptFile,
	LockViolation,
	RequestError
} from './errors.ts'
import { HashReadError, hashFiles } from './hashing.ts'
import {
	type ArtifactFile,
	type ArtifactScan,
	aggregateSha256,
	compareBytes,
	contentAddress,
	diffFiles,
	hasChanges,
	scanArtifacts
} from './integrity.ts'
import { BackendClient } from './openai.ts'
import type { Registry } from './registry.ts'
import type { LockResult, ModelSummary, RegistryEntry, Selection, VerifyResult } from './schema.ts'
import { selectByName, selectByRole, selectionOf } from './select.ts'
import type { Settings } from './settings.ts'
import { StateDb, fingerprintKey, statePathFor } from './state.ts'
import { RegistryStore } from './store.ts'

/** What every use case works on. Built once per CLI command or server. */
export interface Deps {
	settings: Settings
	store: RegistryStore
	state: StateDb
	/**
	 * Artifact sets smaller than this many bytes are hashed on the calling thread (default: hashing.ts's
	 * 64 MiB). The server sets 0: every hash then runs in a child process and never blocks its requests.
	 */
	inlineHashBelow?: number
}

/** The store and state database of the registry named in `settings`. */
export function openDeps(settings: Settings): Deps {
	const state = new StateDb(statePathFor(settings.registryPath), { lockTimeout: settings.lockTimeout })
	return { settings, state, store: new RegistryStore(settings.registryPath, state) }
}

/** An ISO 8601 UTC timestamp to the second, the format imageworks writes. */
export function utcNow(): string {
	return new Date().toISOString().replace(/\.\d{3}Z$/, '+00:00')
}

// ---------------------------------------------------------------- list / select

export function summaryOf(entry: RegistryEntry): ModelSummary {
	return {
		name: entry.name,
		backend: entry.backend,
		capabilities: { ...capabilitiesOf(entry) },
		locked: isLocked(entry),
		vision_ok: visionOk(entry),
		display_name: entry.display_name ?? null,
		deprecated: isDeprecated(entry),
		roles: rolesOf(entry)
	}
}

/** Every entry (or those listing `role`), sorted by name bytes. */
export function listModels(registry: Registry, options: { role?: string | undefined } = {}): ModelSummary[] {
	const { role } = options
	return registry.entries
		.filter((e) => role === undefined || rolesOf(e).includes(role))
		.sort((a, b) => compareBytes(a.name, b.name))
		.map(summaryOf)
}

/** What to select: a name or alias, or a role (exactly one), and the capabilities the caller needs. */
export interface SelectRequest {
	name?: string | undefined
	role?: string | undefined
	require?: readonly string[] | undefined
	/** Also ask the backend whether it serves the model now (BackendNotReady if not). */
	checkBackend?: boolean | undefined
}

/**
 * Resolve a name, alias or role to an endpoint; refuse missing capabilities and drifted locked models.
 * @throws {RequestError} @throws {ModelNotFound} @throws {NoModelForRole} @throws {MissingCapabilities}
 * @throws {LockViolation}
 */
export function selectModel(deps: Deps, request: SelectRequest, registry: Registry = deps.store.load()): Selection {
	if ((request.name === undefined) === (request.role === undefined)) {
		throw new RequestError('Give exactly one of a model name or a role')
	}
	const required = parseRequired(request.require ?? [])
	const entry =
		request.name !== undefined
			? selectByName(registry, request.name, required)
			: selectByRole(registry, request.role as string, required)
	if (isLocked(entry)) checkLockFingerprints(deps, entry)
	return selectionOf(entry)
}

/**
 * {@link selectModel}, then (with `checkBackend`) ask the model's server whether it serves the model now.
 * @throws {BackendNotReady} besides what selectModel throws
 */
export async function selectReady(deps: Deps, request: SelectRequest, registry?: Registry): Promise<Selection> {
	const chosen = selectModel(deps, request, registry)
	if (!request.checkBackend) return chosen
	try {
		await new BackendClient(chosen.endpoint, { timeout: deps.settings.checkTimeout }).requireModel(chosen.internal_model_id)
	} catch (error) {
		if (error instanceof BackendError) throw new BackendNotReady(chosen.name, error)
		throw error
	}
	return chosen
}

/** `{name: does its backend serve it now}`, asking each distinct endpoint once, concurrently. */
export async function backendStatus(deps: Deps, selections: readonly Selection[]): Promise<Map<string, boolean>> {
	const endpoints = [...new Set(selections.map((s) => s.endpoint))]
	const served = new Map<string, Set<string> | null>()
	await Promise.all(
		endpoints.map(async (endpoint) => {
			try {
				served.set(endpoint, new Set(await new BackendClient(endpoint, { timeout: deps.settings.checkTimeout }).listModels()))
			} catch (error) {
				if (!(error instanceof BackendError)) throw error
				served.set(endpoint, null)
			}
		})
	)
	return new Map(selections.map((s) => [s.name, served.get(s.endpoint)?.has(s.internal_model_id) ?? false]))
}

/**
 * A locked model is usable only while its files match the last verify: stat only, no hashing.
 * @throws {LockViolation} naming the files added, removed or changed since
 */
export function checkLockFingerprints(deps: Deps, entry: RegistryEntry): void {
	const name = entry.name
	const verifyHint = `Run "imageworks-loader verify ${name}"`
	const verified = deps.state.verified(name)
	if (!verified) throw new LockViolation(name, { reason: 'it has not been verified on this machine', hint: verifyHint })
	const reference = lockReference(entry)
	if (reference && reference !== verified.aggregate) {
		throw new LockViolation(name, {
			reason: "the lock's expected hash is not the one the last verify saw",
			expected: reference,
			actual: verified.aggregate,
			hint: verifyHint
		})
	}
	let scan: ArtifactScan
	try {
		scan = scanModel(deps, entry)
	} catch (error) {
		if (error instanceof ArtifactsMissing) throw new LockViolation(name, { reason: error.reason, hint: verifyHint })
		throw error
	}
	const recorded = new Map([...verified.files].map(([path, fp]) => [path, fingerprintKey(fp)]))
	const current = new Map(scan.files.map((f) => [f.path, fingerprintKey(f.fingerprint)]))
	const changes = diffFiles(recorded, current)
	if (hasChanges(changes)) {
		throw new LockViolation(name, { ...changes, hint: `Files changed since the last verify. ${verifyHint}` })
	}
}

// ---------------------------------------------------------------- integrity

/** The folder (or file) holding the model: relative paths are relative to the registry, not the cwd. */
export function modelPathOf(deps: Deps, entry: RegistryEntry): string {
	const modelPath = (entry.backend_config?.model_path ?? '').trim()
	if (!modelPath) {
		throw new ArtifactsMissing(entry.name, "backend_config.model_path is not set; add the model's folder to the entry")
	}
	if (modelPath.includes('://') || /^(ollama|hf):/.test(modelPath)) {
		throw new ArtifactsMissing(
			entry.name,
			`model_path ${JSON.stringify(modelPath)} is not a local folder; set it to the folder holding the files`
		)
	}
	const expanded = modelPath === '~' || modelPath.startsWith('~/') ? homedir() + modelPath.slice(1) : modelPath
	return isAbsolute(expanded) ? expanded : resolve(dirname(resolve(deps.settings.registryPath)), expanded)
}

function scanModel(deps: Deps, entry: RegistryEntry): ArtifactScan {
	const path = modelPathOf(deps, entry)
	const shown = entry.backend_config?.model_path
	let scan: ArtifactScan
	try {
		scan = scanArtifacts(path)
	} catch (error) {
		const code = (error as NodeJS.ErrnoException).code
		const reason =
			code === 'ENOENT'
				? 'does not exist'
				: code === 'ENOTDIR'
					? 'is not a folder or file'
					: code === 'EACCES' || code === 'EPERM'
						? 'is not readable'
						: `cannot be read (${(error as Error).message})`
		throw new ArtifactsMissing(entry.name, `model_path ${shown} ${reason}`)
	}
	if (!scan.files.length) throw new ArtifactsMissing(entry.name, `model_path ${shown} holds no files`)
	return scan
}

/** Progress callbacks for long hashing work (a progress bar on a terminal). */
export interface ProgressHooks {
	/** Called once the artifact set is known. */
	onStart?: (files: number, bytes: number) => void
	/** Called with byte counts as they are hashed. */
	onProgress?: (bytes: number) => void
}

/**
 * Rehash every file, check content addresses and the lock, and record the result.
 *
 * On any failure nothing is recorded, so a drifted locked model stays refused by select.
 * @throws {ModelNotFound} @throws {ArtifactsMissing} @throws {LockViolation} @throws {CorruptArtifact}
 */
export async function verifyModel(deps: Deps, name: string, hooks: ProgressHooks = {}): Promise<VerifyResult> {
	const entry = deps.store.load().get(name)
	name = entry.name
	const started = performance.now()
	const scan = scanModel(deps, entry)
	if (scan.dangling.length) throw new ArtifactsMissing(name, `broken symlinks: ${scan.dangling.slice(0, 10).join(', ')}`)
	const total = scan.files.reduce((sum, f) => sum + f.fingerprint.size, 0n)
	hooks.onStart?.(scan.files.length, Number(total))
	const hashes = await hashArtifacts(deps, name, scan.files, hooks)
	const after = scanModel(deps, entry)
	const moved = diffFiles(fingerprints(scan.files), fingerprints(after.files))
	if (hasChanges(moved)) {
		throw new LockViolation(name, {
			...moved,
			hint: 'Files changed while they were being hashed; wait for copies to finish and run verify again'
		})
	}
	const corrupt: CorruptFile[] = []
	for (const f of scan.files) {
		const expected = contentAddress(f.abspath)
		const actual = hashes.get(f.path) as string
		if (expected && expected !== actual) corrupt.push({ path: f.path, expected, actual })
	}
	if (corrupt.length) throw new CorruptArtifact(name, corrupt)
	const aggregate = aggregateSha256(hashes)

	const outcome = await deps.store.updateEntry(name, (raw) => {
		const current = raw as RegistryEntry // as it is on disk now, under the lock
		const recorded = recordedFiles(current)
		const changes = recorded.size ? diffFiles(recorded, hashes) : null
		const reference = lockReference(current)
		if (isLocked(current) && reference && reference !== aggregate) {
			throw new LockViolation(name, {
				...(changes ?? {}),
				reason: changes && hasChanges(changes) ? '' : 'the aggregate differs from the lock',
				expected: reference,
				actual: aggregate,
				hint: `If the new files are intended, re-baseline the lock with "imageworks-loader lock ${name} --set-expected --replace"`
			})
		}
		const artifacts = ensureBlock(raw, 'artifacts')
		artifacts['aggregate_sha256'] = aggregate
		artifacts['files'] = [...hashes.keys()].sort(compareBytes).map((path) => ({ path, sha256: hashes.get(path) }))
		ensureBlock(raw, 'version_lock')['last_verified'] = utcNow()
		deps.state.recordVerified(
			name,
			aggregate,
			new Map(scan.files.map((f) => [f.path, { fingerprint: f.fingerprint, sha256: hashes.get(f.path) as string }]))
		)
		return { locked: isLocked(current), changes }
	})
	return {
		status: 'ok',
		name,
		aggregate_sha256: aggregate,
		files: scan.files.length,
		bytes: Number(total),
		seconds: Math.round(performance.now() - started) / 1000,
		locked: outcome.locked,
		changes: outcome.changes
	}
}

function fingerprints(files: readonly ArtifactFile[]): Map<string, string> {
	return new Map(files.map((f) => [f.path, fingerprintKey(f.fingerprint)]))
}

const HASH_FAILURES: Record<string, string> = {
	ENOENT: 'disappeared while hashing',
	ECHANGED: 'changed while it was being hashed: verify again once it is complete'
}

async function hashArtifacts(deps: Deps, name: string, files: readonly ArtifactFile[], hooks: ProgressHooks): Promise<Map<string, string>> {
	try {
		return await hashFiles(
			files.map((f) => ({ path: f.path, abspath: f.abspath, size: f.fingerprint.size })),
			{ onProgress: hooks.onProgress, inlineBelow: deps.inlineHashBelow }
		)
	} catch (error) {
		if (error instanceof HashReadError) {
			const why = HASH_FAILURES[error.code] ?? 'is not readable'
			throw new ArtifactsMissing(name, `${error.path} ${why}`)
		}
		throw error
	}
}

/** Options of {@link lockModel}. */
export interface LockOptions extends ProgressHooks {
	/** Fill an empty expected hash from the current files (hashes them). */
	setExpected?: boolean
	/** Replace an existing expected hash: the deliberate way to accept new files for a locked model. */
	replace?: boolean
}

/**
 * Set `locked`; with `setExpected`, fill an empty expected hash from the current files; with `replace`,
 * re-baseline it even if one was set.
 */
export async function lockModel(deps: Deps, name: string, options: LockOptions = {}): Promise<LockResult> {
	let fresh: string | undefined
	if (options.setExpected || options.replace) {
		const entry = deps.store.load().get(name)
		name = entry.name
		if (options.replace) {
			if (isLocked(entry)) await unlockModel(deps, name) // new files must not be judged by the old lock
			fresh = (await verifyModel(deps, name, options)).aggregate_sha256
		} else if (!entry.version_lock?.expected_aggregate_sha256) {
			fresh = (await verifyModel(deps, name, options)).aggregate_sha256
		}
	}
	return deps.store.updateEntry(name, (raw) => {
		const lock = ensureBlock(raw, 'version_lock')
		const before = [lock['locked'], lock['expected_aggregate_sha256']]
		lock['locked'] = true
		if (fresh && (options.replace || !lock['expected_aggregate_sha256'])) lock['expected_aggregate_sha256'] = fresh
		const expected = (lock['expected_aggregate_sha256'] as string | null | undefined) || null
		return {
			name: raw['name'] as string,
			locked: true,
			expected_aggregate_sha256: expected,
			changed: before[0] !== true || before[1] !== lock['expected_aggregate_sha256']
		}
	})
}

/** Clear `locked`; keep the expected hash for a later re-lock. */
export function unlockModel(deps: Deps, name: string): Promise<LockResult> {
	return deps.store.updateEntry(name, (raw) => {
		const lock = raw['version_lock']
		if (typeof lock !== 'object' || lock === null) {
			return { name: raw['name'] as string, locked: false, expected_aggregate_sha256: null, changed: false }
		}
		const record = lock as Record<string, unknown>
		const was = record['locked'] === true
		record['locked'] = false
		return {
			name: raw['name'] as string,
			locked: false,
			expected_aggregate_sha256: (record['expected_aggregate_sha256'] as string | null | undefined) || null,
			changed: was
		}
	})
}
