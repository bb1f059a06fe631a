/** Port of tests/test_services.py: list, select, verify, lock and unlock over a real registry and model folder. */
import { describe, expect, spyOn, test } from 'bun:test'
import { createHash } from 'node:crypto'
import { mkdirSync, readFileSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import {
	ArtifactsMissing,
	CorruptArtifact,
	InvalidName,
	LockViolation,
	MissingCapabilities,
	ModelNotFound,
	NoModelForRole,
	RequestError,
	UnknownCapability
} from '../../src/core/errors.ts'
import * as hashFile from '../../src/core/hash-file.ts'
import * as hashing from '../../src/core/hashing.ts'
import { aggregateSha256 } from '../../src/core/integrity.ts'
import { listModels, lockModel, selectModel, unlockModel, verifyModel } from '../../src/core/service.ts'
import { caught, rejected } from '../helpers/errors.ts'
import { depsFor, entry, makeModelDir, readJson, tempDir, world, writeRegistry } from '../helpers/registry.ts'

type Raw = Record<string, any>

const rawEntry = (path: string, name: string): Raw => {
	const found = readJson<Raw[]>(path).find((e) => e['name'] === name)
	if (!found) throw new Error(`no entry ${name} in ${path}`)
	return found
}

const sha256 = (data: Uint8Array | string) => createHash('sha256').update(data).digest('hex')

/** Fail the test if anything hashes a file while `fn` runs. */
function withoutHashing<T>(fn: () => T): T {
	const files = spyOn(hashing, 'hashFiles').mockImplementation(() => {
		throw new Error('select must never hash')
	})
	const one = spyOn(hashFile, 'hashFileSync').mockImplementation(() => {
		throw new Error('select must never hash')
	})
	try {
		return fn()
	} finally {
		files.mockRestore()
		one.mockRestore()
	}
}

describe('verifyModel()', () => {
	test('records the per-file hashes, the aggregate, last_verified and the fingerprints', async () => {
		using w = world()
		const result = await verifyModel(w.deps, 'tiny')
		const e = rawEntry(w.registryPath, 'tiny')
		const files = new Map<string, string>(e['artifacts']['files'].map((f: Raw) => [f['path'], f['sha256']]))
		expect([...files.keys()]).toEqual([
			'config.json',
			'model-00001-of-00002.safetensors',
			'model-00002-of-00002.safetensors',
			'tokenizer/tokenizer.json'
		])
		expect(files.get('config.json')).toBe(sha256(readFileSync(join(w.modelDir, 'config.json'))))
		expect(e['artifacts']['aggregate_sha256']).toBe(result.aggregate_sha256)
		expect(result.aggregate_sha256).toBe(aggregateSha256(files))
		expect(e['version_lock']['last_verified']).toStartWith(`${new Date().getUTCFullYear()}-`)
		expect(e['version_lock']['last_verified']).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$/)
		expect(result).toEqual({
			status: 'ok',
			name: 'tiny',
			aggregate_sha256: result.aggregate_sha256,
			files: 4,
			bytes: 20 + 300_000 + 123_457 + 18,
			seconds: expect.any(Number),
			locked: false,
			changes: null
		})
		const verified = w.deps.state.verified('tiny')
		expect(verified?.aggregate).toBe(result.aggregate_sha256)
		expect(verified?.files.size).toBe(4)
	})

	test('by alias records on the entry itself', async () => {
		using w = world()
		expect((await verifyModel(w.deps, 'tiny-alias')).name).toBe('tiny')
		expect(rawEntry(w.registryPath, 'tiny')['artifacts']['files']).toHaveLength(4)
	})

	test('reports progress: the set first, then every byte', async () => {
		using w = world()
		let start: [number, number] | undefined
		let seen = 0
		const result = await verifyModel(w.deps, 'tiny', {
			onStart: (files, bytes) => (start = [files, bytes]),
			onProgress: (n) => (seen += n)
		})
		expect(start).toEqual([4, result.bytes])
		expect(seen).toBe(result.bytes)
	})

	test('of a locked model with changed files reports the diff and records nothing', async () => {
		using w = world()
		await lockModel(w.deps, 'tiny', { setExpected: true })
		const before = rawEntry(w.registryPath, 'tiny')
		const stateBefore = w.deps.state.verified('tiny')
		writeFileSync(join(w.modelDir, 'model-00002-of-00002.safetensors'), 'tampered')
		writeFileSync(join(w.modelDir, 'new.txt'), 'hi')
		unlinkSync(join(w.modelDir, 'config.json'))
		const err = await rejected(LockViolation, verifyModel(w.deps, 'tiny'))
		expect(err.changes).toEqual({ changed: ['model-00002-of-00002.safetensors'], added: ['new.txt'], removed: ['config.json'] })
		expect(err.details['expected_aggregate_sha256']).toBe(before['version_lock']['expected_aggregate_sha256'])
		expect(err.message).toStartWith(
			'Model "tiny" is locked and its files do not match: changed: model-00002-of-00002.safetensors; added: new.txt; ' +
				`removed: config.json. Expected aggregate sha256 ${before['version_lock']['expected_aggregate_sha256']}, got `
		)
		expect(rawEntry(w.registryPath, 'tiny')).toEqual(before)
		expect(w.deps.state.verified('tiny')).toEqual(stateBefore)
		const select = caught(LockViolation, () => selectModel(w.deps, { name: 'tiny' }))
		expect(select.changes).toEqual({ changed: ['model-00002-of-00002.safetensors'], added: ['new.txt'], removed: ['config.json'] })
		expect(select.message).toEndWith('Run "imageworks-loader verify tiny"')
	})

	test('a missing, remote, or empty model_path is a clear error', async () => {
		using dir = tempDir()
		mkdirSync(join(dir.path, 'empty'))
		const path = writeRegistry(join(dir.path, 'r.json'), [
			entry('nopath'),
			entry('gone', { modelPath: join(dir.path, 'missing') }),
			entry('ollama', { modelPath: 'ollama:/qwen2.5vl:7b' }),
			entry('remote', { modelPath: 'https://huggingface.co/org/model' }),
			entry('empty', { modelPath: join(dir.path, 'empty') })
		])
		const deps = depsFor(path)
		try {
			const message = async (name: string) => (await rejected(ArtifactsMissing, verifyModel(deps, name))).message
			expect(await message('nopath')).toBe(
				`Cannot check the files of "nopath": backend_config.model_path is not set; add the model's folder to the entry`
			)
			expect(await message('gone')).toBe(`Cannot check the files of "gone": model_path ${join(dir.path, 'missing')} does not exist`)
			expect(await message('ollama')).toBe(
				'Cannot check the files of "ollama": model_path "ollama:/qwen2.5vl:7b" is not a local folder; set it to the folder holding the files'
			)
			expect(await message('remote')).toContain('is not a local folder')
			expect(await message('empty')).toBe(`Cannot check the files of "empty": model_path ${join(dir.path, 'empty')} holds no files`)
		} finally {
			deps.state.close()
		}
	})

	test('a broken symlink in the model is named', async () => {
		using w = world()
		symlinkSync(join(w.root, 'nowhere'), join(w.modelDir, 'weights.bin'))
		const err = await rejected(ArtifactsMissing, verifyModel(w.deps, 'tiny'))
		expect(err.message).toBe('Cannot check the files of "tiny": broken symlinks: weights.bin')
	})

	test('a corrupt Hugging Face blob is reported and nothing is recorded', async () => {
		using dir = tempDir()
		const blobs = join(dir.path, 'blobs')
		const snap = join(dir.path, 'snap')
		mkdirSync(blobs)
		mkdirSync(snap)
		const claimed = sha256('good weights')
		writeFileSync(join(blobs, claimed), 'bit-rotted weights')
		symlinkSync(join(blobs, claimed), join(snap, 'model.safetensors'))
		const path = writeRegistry(join(dir.path, 'r.json'), [entry('hf', { modelPath: snap })])
		const deps = depsFor(path)
		try {
			const err = await rejected(CorruptArtifact, verifyModel(deps, 'hf'))
			expect(err.corrupt).toEqual([{ path: 'model.safetensors', expected: claimed, actual: sha256('bit-rotted weights') }])
			expect(err.message).toBe(
				`Model "hf" has corrupt content-addressed files: model.safetensors: expected sha256 ${claimed}, ` +
					`got ${sha256('bit-rotted weights')}. Download them again`
			)
			expect(readJson<Raw[]>(path)[0]?.['artifacts']).toBeUndefined()
			expect(deps.state.verified('hf')).toBeUndefined()
		} finally {
			deps.state.close()
		}
	})

	test('a relative model_path is relative to the registry, not the working directory', async () => {
		using dir = tempDir()
		makeModelDir(dir.path)
		const path = writeRegistry(join(dir.path, 'configs', 'r.json'), [entry('rel', { modelPath: '../models/tiny' })])
		const deps = depsFor(path)
		try {
			expect((await verifyModel(deps, 'rel')).files).toBe(4)
		} finally {
			deps.state.close()
		}
	})
})

describe('lockModel() and selectModel()', () => {
	test('lock --set-expected, select, then drift is refused without hashing', async () => {
		using w = world()
		// the guard is real: verify, which must hash, fails under it
		const spy = spyOn(hashing, 'hashFiles').mockImplementation(() => {
			throw new Error('hashed')
		})
		try {
			await expect(verifyModel(w.deps, 'tiny')).rejects.toThrow('hashed')
		} finally {
			spy.mockRestore()
		}
		const lock = await lockModel(w.deps, 'tiny', { setExpected: true })
		expect(lock).toEqual({
			name: 'tiny',
			locked: true,
			expected_aggregate_sha256: rawEntry(w.registryPath, 'tiny')['artifacts']['aggregate_sha256'],
			changed: true
		})
		expect(withoutHashing(() => selectModel(w.deps, { name: 'tiny' })).locked).toBe(true)

		writeFileSync(join(w.modelDir, 'config.json'), '{"hidden_size": 65}\n')
		writeFileSync(join(w.modelDir, 'extra.bin'), 'x')
		unlinkSync(join(w.modelDir, 'tokenizer', 'tokenizer.json'))
		const err = withoutHashing(() => caught(LockViolation, () => selectModel(w.deps, { name: 'tiny' })))
		expect(err.changes).toEqual({ changed: ['config.json'], added: ['extra.bin'], removed: ['tokenizer/tokenizer.json'] })
		expect(err.message).toBe(
			'Model "tiny" is locked and its files do not match: changed: config.json; added: extra.bin; ' +
				'removed: tokenizer/tokenizer.json. Files changed since the last verify. Run "imageworks-loader verify tiny"'
		)
	})

	test('touching a file without changing its bytes needs a verify, which then passes', async () => {
		using w = world()
		await lockModel(w.deps, 'tiny', { setExpected: true })
		utimesSync(join(w.modelDir, 'config.json'), 1, 1)
		const err = caught(LockViolation, () => selectModel(w.deps, { name: 'tiny' }))
		expect(err.changes.changed).toEqual(['config.json'])
		const verified = await verifyModel(w.deps, 'tiny') // same bytes: matches the lock, records new fingerprints
		expect(verified.locked).toBe(true)
		expect(verified.changes).toEqual({ changed: [], added: [], removed: [] })
		expect(selectModel(w.deps, { name: 'tiny' }).name).toBe('tiny')
	})

	test('unlock keeps the expected hash and allows drift', async () => {
		using w = world()
		const expected = (await lockModel(w.deps, 'tiny', { setExpected: true })).expected_aggregate_sha256
		const res = await unlockModel(w.deps, 'tiny')
		expect(res).toEqual({ name: 'tiny', locked: false, expected_aggregate_sha256: expected, changed: true })
		expect((await unlockModel(w.deps, 'tiny')).changed).toBe(false)
		writeFileSync(join(w.modelDir, 'config.json'), 'changed')
		expect(selectModel(w.deps, { name: 'tiny' }).name).toBe('tiny')
		const v = await verifyModel(w.deps, 'tiny')
		expect(v.changes).toEqual({ changed: ['config.json'], added: [], removed: [] })
		expect(rawEntry(w.registryPath, 'tiny')['version_lock']['expected_aggregate_sha256']).toBe(expected)
	})

	test('a model locked but never verified here is refused', async () => {
		using w = world()
		expect(await lockModel(w.deps, 'tiny')).toEqual({ name: 'tiny', locked: true, expected_aggregate_sha256: null, changed: true })
		expect((await lockModel(w.deps, 'tiny')).changed).toBe(false)
		const err = caught(LockViolation, () => selectModel(w.deps, { name: 'tiny' }))
		expect(err.message).toBe(
			'Model "tiny" is locked and its files do not match: it has not been verified on this machine. ' +
				'Run "imageworks-loader verify tiny"'
		)
	})

	test('an expected hash edited by hand is refused until verify', async () => {
		using w = world()
		await lockModel(w.deps, 'tiny', { setExpected: true })
		const raw = readJson<Raw[]>(w.registryPath)
		raw[0]!['version_lock']['expected_aggregate_sha256'] = '0'.repeat(64)
		writeFileSync(w.registryPath, JSON.stringify(raw))
		const err = caught(LockViolation, () => selectModel(w.deps, { name: 'tiny' }))
		expect(err.message).toContain("the lock's expected hash is not the one the last verify saw")
		expect(err.message).toContain(`Expected aggregate sha256 ${'0'.repeat(64)}, got `)
		expect(err.message).toEndWith('Run "imageworks-loader verify tiny"')
		const verify = await rejected(LockViolation, verifyModel(w.deps, 'tiny'))
		expect(verify.details['expected_aggregate_sha256']).toBe('0'.repeat(64))
		expect(verify.message).toStartWith(
			`Model "tiny" is locked and its files do not match: the aggregate differs from the lock. Expected aggregate sha256 ${'0'.repeat(64)}, got `
		)
	})

	test('--replace re-baselines a locked model deliberately, never silently', async () => {
		using w = world()
		const old = (await lockModel(w.deps, 'tiny', { setExpected: true })).expected_aggregate_sha256
		writeFileSync(join(w.modelDir, 'config.json'), 'new weights config')
		const err = await rejected(LockViolation, verifyModel(w.deps, 'tiny'))
		expect(err.changes).toEqual({ changed: ['config.json'], added: [], removed: [] })
		expect(err.message).toEndWith(
			'If the new files are intended, re-baseline the lock with "imageworks-loader lock tiny --set-expected --replace"'
		)
		expect((await lockModel(w.deps, 'tiny', { setExpected: true })).expected_aggregate_sha256).toBe(old) // not replaced
		const fresh = await lockModel(w.deps, 'tiny', { setExpected: true, replace: true })
		expect(fresh.locked).toBe(true)
		expect(fresh.expected_aggregate_sha256).not.toBe(old)
		expect(fresh.expected_aggregate_sha256).toBe(rawEntry(w.registryPath, 'tiny')['artifacts']['aggregate_sha256'])
		expect(selectModel(w.deps, { name: 'tiny' }).name).toBe('tiny')
	})

	test('select checks capabilities and names', () => {
		using w = world()
		const missing = caught(MissingCapabilities, () => selectModel(w.deps, { name: 'tiny', require: ['vision'] }))
		expect(missing.missing).toEqual(['vision'])
		expect(missing.message).toBe('Model "tiny" lacks required capability: vision. Choose another model or select by role')
		expect(caught(ModelNotFound, () => selectModel(w.deps, { name: 'tinyy' })).message).toBe(
			'No model named "tinyy" in the registry. Did you mean "tiny"? Run "imageworks-loader list" to see them'
		)
		expect(caught(InvalidName, () => selectModel(w.deps, { name: '../etc/passwd' })).message).toStartWith(
			'Invalid model name "../etc/passwd": must not start with "."'
		)
		expect(caught(InvalidName, () => selectModel(w.deps, { name: '' })).message).toStartWith('Invalid model name "": must not be empty')
		expect(caught(UnknownCapability, () => selectModel(w.deps, { name: 'tiny', require: ['telepathy'] })).message).toStartWith(
			'Unknown capability: telepathy. Known: '
		)
		expect(caught(RequestError, () => selectModel(w.deps, {})).message).toBe('Give exactly one of a model name or a role')
		expect(caught(RequestError, () => selectModel(w.deps, { name: 'tiny', role: 'caption' })).message).toBe(
			'Give exactly one of a model name or a role'
		)
		expect(selectModel(w.deps, { role: 'caption', require: ['vision'] })).toEqual({
			name: 'vision-a',
			endpoint: 'http://localhost:8000/v1',
			backend: 'vllm',
			internal_model_id: 'org/vision-a',
			capabilities: { text: true, vision: true, audio: false, embedding: false, tools: true, thinking: false },
			locked: false,
			deprecated: false,
			display_name: null
		})
		expect(selectModel(w.deps, { name: 'vision-b', require: ['image'] }).endpoint).toBe('http://gpu-box:11434/v1')
		expect(caught(NoModelForRole, () => selectModel(w.deps, { role: 'caption', require: ['audio'] })).rejected).toEqual([
			{ name: 'old', reason: 'deprecated' },
			{ name: 'vision-a', reason: 'lacks audio' },
			{ name: 'vision-b', reason: 'lacks audio' }
		])
	})

	test('did-you-mean includes aliases', () => {
		using w = world()
		const err = caught(ModelNotFound, () => selectModel(w.deps, { name: 'tiny-alas' }))
		expect(err.suggestions).toContain('tiny-alias')
		expect(err.message).toContain('Did you mean "tiny-alias"')
	})
})

describe('listModels()', () => {
	test('is sorted by name and filtered by role', () => {
		using w = world()
		const registry = w.deps.store.load()
		expect(listModels(registry).map((m) => m.name)).toEqual(['old', 'tiny', 'vision-a', 'vision-b'])
		expect(listModels(registry, { role: 'keywords' }).map((m) => m.name)).toEqual(['old', 'tiny', 'vision-a'])
		expect(listModels(registry, { role: 'nobody' })).toEqual([])
		expect(listModels(registry, { role: 'caption' }).find((m) => m.name === 'vision-b')).toEqual({
			name: 'vision-b',
			backend: 'ollama',
			capabilities: { text: true, vision: true, audio: false, embedding: false, tools: false, thinking: false },
			locked: false,
			vision_ok: null,
			display_name: null,
			deprecated: false,
			roles: ['caption']
		})
	})
})
