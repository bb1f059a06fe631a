/** Port of tests/test_store.py: loading, validating, caching and safely rewriting the registry file. */
import { describe, expect, spyOn, test } from 'bun:test'
import { Database } from 'bun:sqlite'
import * as fs from 'node:fs'
import { chmodSync, mkdirSync, readFileSync, readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import {
	LockTimeout,
	ModelNotFound,
	RegistryError,
	RegistryInvalid,
	RegistryNotFound,
	RegistryWriteError
} from '../../src/core/errors.ts'
import { parseRegistry } from '../../src/core/registry.ts'
import { selectModel } from '../../src/core/service.ts'
import { statePathFor } from '../../src/core/state.ts'
import { runBinary } from '../helpers/binary.ts'
import { caught, rejected } from '../helpers/errors.ts'
import { depsFor, entry, readJson, tempDir, writeRegistry } from '../helpers/registry.ts'
import { openStore } from '../helpers/store.ts'

type Raw = Record<string, any>

/** An entry exactly as imageworks wrote it (synonym capabilities, unknown fields, "None", a big int). */
const REAL_IMAGEWORKS_ENTRY: Raw = {
	name: 'qwen2.5vl_7b_(Q4_K_M)',
	display_name: 'qwen2.5vl 7b (Q4 K M)',
	backend: 'ollama',
	backend_config: { port: 11434, model_path: 'ollama:/qwen2.5vl:7b', extra_args: [], host: 'imageworks-ollama' },
	capabilities: { text: true, vision: true, embedding: false, visual: true, o1: false, 'tool-use': false },
	generation_defaults: { temperature: 0.55, top_p: 0.9, top_k: 20 },
	artifacts: { aggregate_sha256: '', files: [] },
	chat_template: { source: 'embedded', path: null, sha256: null },
	version_lock: { locked: false, expected_aggregate_sha256: null, last_verified: null },
	performance: { rolling_samples: 0, ttft_ms_avg: null, throughput_toks_per_s_avg: null, last_sample: null },
	probes: { vision: null },
	profiles_placeholder: null,
	metadata: { ollama_family: 'qwen25vl', ollama_capabilities: ['completion', 'vision'] },
	served_model_id: 'None',
	model_aliases: ['Qwen/Qwen2.5-VL-7B'],
	roles: [],
	license: null,
	deprecated: false,
	role_priority: {},
	download_size_bytes: 13437642208,
	downloaded_at: '2025-10-30T22:31:34.990500+00:00'
}

const tempFiles = (folder: string) => readdirSync(folder).filter((n) => n.endsWith('.tmp'))

describe('RegistryStore.load()', () => {
	test('reads a real imageworks entry', () => {
		using dir = tempDir()
		const path = writeRegistry(join(dir.path, 'r.json'), [REAL_IMAGEWORKS_ENTRY, entry('other')])
		using store = openStore(path)
		const got = store.load().get('qwen2.5vl_7b_(Q4_K_M)')
		expect(got.backend).toBe('ollama')
		expect(store.load().get('Qwen/Qwen2.5-VL-7B')).toBe(got)
	})

	test('a missing file says how to point at one', () => {
		using dir = tempDir()
		const path = join(dir.path, 'nope.json')
		using store = openStore(path)
		const err = caught(RegistryNotFound, () => store.load())
		expect(err.message).toBe(`Registry not found: ${path}. Pass --registry PATH or set IMAGEWORKS_REGISTRY`)
		expect(err.code).toBe('registry_not_found')
	})

	test('a folder, or bytes that are not UTF-8, are invalid, not a crash', () => {
		using dir = tempDir()
		using folder = openStore(dir.path)
		expect(caught(RegistryInvalid, () => folder.load()).problems).toEqual(['is a directory, not a JSON file'])
		const path = join(dir.path, 'r.json')
		writeFileSync(path, Buffer.from([0x5b, 0xff, 0xfe, 0x5d]))
		using store = openStore(path)
		expect(caught(RegistryInvalid, () => store.load()).problems).toEqual(['is not valid UTF-8 text'])
	})

	test('malformed JSON names the file, the line and the column', () => {
		using dir = tempDir()
		const path = join(dir.path, 'r.json')
		writeFileSync(path, '[\n  {"name": "a", "backend": "vllm"},\n  {"name": "b" "backend": "vllm"}\n]\n')
		using store = openStore(path)
		const err = caught(RegistryInvalid, () => store.load())
		expect(err.message).toBe(
			`Registry ${path} is invalid (1 problem); nothing was changed. Fix the file and retry:\n` +
				"  - malformed JSON at line 3, column 16: expecting ',' or '}'"
		)
	})

	test('every bad entry is named by index, name and field', () => {
		using dir = tempDir()
		const path = writeRegistry(join(dir.path, 'r.json'), [
			entry('good'),
			{ ...entry('bad-port'), backend_config: { port: 99999 } },
			{ ...entry('bad-lock'), version_lock: { locked: 'yes' } },
			{ backend: 'vllm' },
			'not an object',
			entry('../escape')
		])
		using store = openStore(path)
		const err = caught(RegistryInvalid, () => store.load())
		expect(err.problems).toEqual([
			'entry 1 ("bad-port"): field backend_config.port: must be an integer from 1 to 65535 or null, found 99999',
			'entry 2 ("bad-lock"): field version_lock.locked: must be true or false or null, found "yes"',
			'entry 3: field name: is missing (required)',
			'entry 4: must be a JSON object, found a string',
			'entry 5 ("../escape"): field name: name must not start with "."'
		])
		expect(err.message).toStartWith(`Registry ${path} is invalid (5 problems); nothing was changed.`)
	})

	test('duplicate names and aliases name both entries', () => {
		using dir = tempDir()
		const path = writeRegistry(join(dir.path, 'r.json'), [
			entry('a'),
			entry('b', { aliases: ['a-alias'] }),
			entry('a'),
			entry('c', { aliases: ['b'] })
		])
		using store = openStore(path)
		expect(caught(RegistryInvalid, () => store.load()).problems).toEqual([
			'duplicate name "a": entries 0 and 2',
			'alias "b" of entry 3 ("c") is already the name or an alias of entry 1 ("b")'
		])
	})

	test('hand edits are seen without a restart; an unchanged file is not parsed again', () => {
		using dir = tempDir()
		const path = writeRegistry(join(dir.path, 'r.json'), [entry('a')])
		using store = openStore(path)
		expect(store.load().entries.map((e) => e.name)).toEqual(['a'])
		writeRegistry(path, [entry('a'), entry('b')])
		expect(store.load().entries.map((e) => e.name)).toEqual(['a', 'b'])
		const first = store.load()
		expect(store.load()).toBe(first)
		// same size, same inode, new bytes: the mtime tells (set apart explicitly, as time passing would:
		// two writes within one kernel clock tick can share an mtime)
		const text = readFileSync(path, 'utf8')
		writeFileSync(path, text.replace('"b"', '"c"'))
		const later = new Date(statSync(path).mtimeMs + 5_000)
		utimesSync(path, later, later)
		expect(store.load().entries.map((e) => e.name)).toEqual(['a', 'c'])
	})

	test('the last good copy is kept while the file is broken, until it is fixed', () => {
		using dir = tempDir()
		const path = writeRegistry(join(dir.path, 'r.json'), [entry('a')])
		using store = openStore(path)
		store.load()
		writeFileSync(path, '[{')
		const broken = store.loadOrLastGood()
		expect(broken.registry.entries.map((e) => e.name)).toEqual(['a'])
		expect(broken.stale).toBeInstanceOf(RegistryInvalid)
		expect(broken.stale?.message).toContain('malformed JSON at line 1, column 3')
		expect(() => store.load()).toThrow(RegistryInvalid)
		writeRegistry(path, [entry('a'), entry('c')])
		const healed = store.loadOrLastGood()
		expect(healed.stale).toBeUndefined()
		expect(healed.registry.entries.map((e) => e.name)).toEqual(['a', 'c'])
	})

	test('with no good copy yet, a broken file is an error even for the server', () => {
		using dir = tempDir()
		const path = join(dir.path, 'r.json')
		writeFileSync(path, '[{')
		using store = openStore(path)
		expect(() => store.loadOrLastGood()).toThrow(RegistryInvalid)
	})

	test('an unknown model suggests close names', () => {
		using dir = tempDir()
		const path = writeRegistry(join(dir.path, 'r.json'), [entry('qwen2.5-vl-7b'), entry('llama3')])
		using store = openStore(path)
		const err = caught(ModelNotFound, () => store.load().get('qwen2.5-vl-7'))
		expect(err.suggestions).toEqual(['qwen2.5-vl-7b'])
		expect(err.message).toBe(
			'No model named "qwen2.5-vl-7" in the registry. Did you mean "qwen2.5-vl-7b"? Run "imageworks-loader list" to see them'
		)
		expect(caught(ModelNotFound, () => store.load().get('QWEN2.5-VL-7B')).suggestions).toEqual(['qwen2.5-vl-7b'])
	})

	test('a bad sha256 is explained', () => {
		using dir = tempDir()
		const path = writeRegistry(join(dir.path, 'r.json'), [{ ...entry('a'), artifacts: { aggregate_sha256: 'xyz', files: [] } }])
		using store = openStore(path)
		expect(caught(RegistryInvalid, () => store.load()).problems).toEqual([
			'entry 0 ("a"): field artifacts.aggregate_sha256: must be 64 lowercase hex digits (a sha256), or empty'
		])
	})

	test("values Python's json writes (NaN, integers over 64 bits) still load and survive a write", async () => {
		using dir = tempDir()
		const path = join(dir.path, 'r.json')
		writeFileSync(
			path,
			'[{"name": "a", "backend": "vllm", "metadata": {"score": NaN, "low": -Infinity, "huge": 123456789012345678901234567890}}]'
		)
		using store = openStore(path)
		expect(store.load().get('a').backend).toBe('vllm')
		expect(store.load().get('a').metadata).toEqual({ score: null, low: null, huge: 1.2345678901234568e29 })
		await store.updateEntry('a', (raw) => {
			raw['deprecated'] = true
		})
		expect(readFileSync(path, 'utf8')).toBe(
			'[{"name": "a", "backend": "vllm", "metadata": {"score": NaN, "low": -Infinity, "huge": 123456789012345678901234567890}, "deprecated": true}]'
		)
	})
})

describe('RegistryStore.updateEntry()', () => {
	test('round-trips unknown fields and key order: only the changed value differs, byte for byte', async () => {
		using dir = tempDir()
		const path = writeRegistry(join(dir.path, 'r.json'), [REAL_IMAGEWORKS_ENTRY, entry('other')])
		const before = readFileSync(path, 'utf8')
		using store = openStore(path)
		const returned = await store.updateEntry('qwen2.5vl_7b_(Q4_K_M)', (raw) => {
			;(raw['version_lock'] as Raw)['locked'] = true
			return 'the change function result'
		})
		expect(returned).toBe('the change function result')
		const after = readFileSync(path, 'utf8')
		expect(after).toBe(before.replace('"locked": false', '"locked": true'))
		const parsed = readJson<Raw[]>(path)
		const expected = structuredClone(REAL_IMAGEWORKS_ENTRY)
		expected['version_lock']['locked'] = true
		expect(parsed[0]).toEqual(expected)
		expect(Object.keys(parsed[0] as Raw)).toEqual(Object.keys(REAL_IMAGEWORKS_ENTRY))
		expect(Object.keys(parsed[0]?.['capabilities'])).toEqual(Object.keys(REAL_IMAGEWORKS_ENTRY['capabilities']))
		expect(parsed[0]?.['download_size_bytes']).toBe(13437642208)
		// the store's own snapshot is the new file: no re-read needed, and it is current
		expect(store.load().get('qwen2.5vl_7b_(Q4_K_M)').version_lock?.locked).toBe(true)
	})

	test('works by alias and reads the file as it is on disk, so two writers never lose updates', async () => {
		using dir = tempDir()
		const path = writeRegistry(join(dir.path, 'r.json'), [entry('a', { aliases: ['alias-a'] }), entry('b')])
		using first = openStore(path)
		using second = openStore(path)
		first.load() // a snapshot that is about to be stale
		await second.updateEntry('b', (raw) => {
			raw['deprecated'] = true
		})
		await first.updateEntry('alias-a', (raw) => {
			raw['display_name'] = 'A'
		})
		const [a, b] = readJson<Raw[]>(path)
		expect(a?.['display_name']).toBe('A')
		expect(b?.['deprecated']).toBe(true)
	})

	describe('a cold writer trusts the layout the last writer recorded for this very file', () => {
		/** A registry written once by a store, so that the state database holds its layout. */
		async function recorded(dir: string) {
			const path = writeRegistry(join(dir, 'r.json'), [entry('a', { aliases: ['alias-a'] }), entry('b'), entry('c')])
			using first = openStore(path)
			await first.updateEntry('a', (raw) => {
				raw['deprecated'] = false
			})
			return path
		}

		test('it reads only the entry it changes (by name or alias), and the rest stays byte-identical', async () => {
			using dir = tempDir()
			const path = await recorded(dir.path)
			const registry = await import('../../src/core/registry.ts')
			const full = spyOn(registry, 'parseRegistry')
			try {
				for (const [name, field] of [['c', 'display_name'], ['alias-a', 'license'], ['b', 'display_name']] as const) {
					// the same change through the full path, on a copy with no recorded layout, is the reference
					const copy = join(dir.path, `copy-${name}.json`)
					writeFileSync(copy, readFileSync(path))
					const change = (raw: Raw) => {
						raw[field] = `set by ${name}`
					}
					using cold = openStore(path)
					await cold.updateEntry(name, change)
					expect(full).not.toHaveBeenCalled()
					using reference = openStore(copy)
					await reference.updateEntry(name, change)
					expect(full).toHaveBeenCalled() // the spy sees the full path, so its silence above means something
					full.mockClear()
					expect(readFileSync(path, 'utf8')).toBe(readFileSync(copy, 'utf8'))
				}
			} finally {
				full.mockRestore()
			}
			expect(parseRegistry(readFileSync(path, 'utf8'), path).entries.map((e) => e.name)).toEqual(['a', 'b', 'c'])
		})

		test('a hand edit since (even of the same size) is validated in full: a broken entry refuses the write', async () => {
			using dir = tempDir()
			const path = await recorded(dir.path)
			const text = readFileSync(path, 'utf8')
			// same length, same inode: only the ctime (and mtime) tell that the file changed
			const broken = text.replace('"backend": "vllm"', '"backend": 123456')
			expect(broken.length).toBe(text.length)
			const fd = fs.openSync(path, 'r+')
			fs.writeSync(fd, broken, 0)
			fs.closeSync(fd)
			using cold = openStore(path)
			const err = await rejected(
				RegistryInvalid,
				cold.updateEntry('c', (raw) => {
					raw['deprecated'] = true
				})
			)
			expect(err.problems.join('\n')).toContain('backend')
			expect(readFileSync(path, 'utf8')).toBe(broken)
		})

		test('an unknown name still gets suggestions, and a clashing rename is still refused', async () => {
			using dir = tempDir()
			const path = await recorded(dir.path)
			using cold = openStore(path)
			const missing = await rejected(ModelNotFound, cold.updateEntry('alias-b', () => undefined))
			expect(missing.message).toContain('alias-a')
			using again = openStore(path)
			const before = readFileSync(path, 'utf8')
			const clash = await rejected(
				RegistryInvalid,
				again.updateEntry('c', (raw) => {
					raw['model_aliases'] = ['b']
				})
			)
			expect(clash.problems.join('\n')).toContain('"b"')
			expect(readFileSync(path, 'utf8')).toBe(before)
		})
	})

	test('an invalid registry is never rewritten', async () => {
		using dir = tempDir()
		const path = join(dir.path, 'r.json')
		const original = '[{"name": "a", "backend": "vllm"}, {"name": "a", "backend": "vllm"}]'
		writeFileSync(path, original)
		using store = openStore(path)
		let called = false
		const err = await rejected(
			RegistryInvalid,
			store.updateEntry('a', (raw) => {
				called = true
				raw['deprecated'] = true
			})
		)
		expect(err.problems).toEqual(['duplicate name "a": entries 0 and 1'])
		expect(called).toBe(false)
		expect(readFileSync(path, 'utf8')).toBe(original)
	})

	test('a change that would break the registry is refused, and nothing is written', async () => {
		using dir = tempDir()
		const path = writeRegistry(join(dir.path, 'r.json'), [entry('a'), entry('b', { aliases: ['bee'] })])
		const before = readFileSync(path)
		using store = openStore(path)
		const renamed = await rejected(
			RegistryInvalid,
			store.updateEntry('a', (raw) => {
				raw['name'] = 'b'
			})
		)
		expect(renamed.problems).toEqual(['duplicate name "b": entries 0 and 1'])
		const aliased = await rejected(
			RegistryInvalid,
			store.updateEntry('a', (raw) => {
				raw['model_aliases'] = ['bee']
			})
		)
		expect(aliased.problems).toEqual(['alias "bee" of entry 1 ("b") is already the name or an alias of entry 0 ("a")'])
		const typed = await rejected(
			RegistryInvalid,
			store.updateEntry('a', (raw) => {
				raw['backend_config'] = { port: 'x' }
			})
		)
		expect(typed.problems).toEqual(['entry 0 ("a"): field backend_config.port: must be an integer from 1 to 65535 or null, found "x"'])
		// an error thrown by the change itself also leaves the file alone
		const boom = new Error('boom')
		await expect(
			store.updateEntry('a', (raw) => {
				raw['deprecated'] = true
				throw boom
			})
		).rejects.toBe(boom)
		expect(readFileSync(path)).toEqual(before)
		expect(store.load().get('a').deprecated).toBe(false)
	})

	test('an unknown name is ModelNotFound and writes nothing', async () => {
		using dir = tempDir()
		const path = writeRegistry(join(dir.path, 'r.json'), [entry('a')])
		const before = readFileSync(path)
		using store = openStore(path)
		const err = await rejected(ModelNotFound, store.updateEntry('b', () => undefined))
		expect(err.message).toContain('No model named "b"')
		expect(readFileSync(path)).toEqual(before)
	})

	test('new values are written in the layout of the file and read back equal', async () => {
		using dir = tempDir()
		const entries: Raw[] = [entry('a', { extra: { display_name: 'ünïcode-é 😀' } }), entry('b')]
		const path = writeRegistry(join(dir.path, 'r.json'), entries)
		using store = openStore(path)
		const value = [1, 2.5, 1e20, 1e-5, -0.001, null, true, { k: 'v\n"q"\t\u0001', '10': 'integer-like key' }, 'é😀', [], {}]
		await store.updateEntry('a', (raw) => {
			raw['x'] = value
			;(raw['capabilities'] as Raw)['vision'] = true
		})
		entries[0] = { ...entries[0], capabilities: { text: true, vision: true }, x: value }
		// a file in the 2-space layout stays exactly what JSON.stringify(..., 2) writes
		expect(readFileSync(path, 'utf8')).toBe(JSON.stringify(entries, null, 2) + '\n')
		expect(readJson<Raw[]>(path)[0]?.['x']).toEqual(value)
	})

	test('the atomic write leaves no temporary file and keeps the file mode', async () => {
		using dir = tempDir()
		const path = writeRegistry(join(dir.path, 'r.json'), [entry('a')])
		chmodSync(path, 0o640)
		using store = openStore(path)
		await store.updateEntry('a', (raw) => {
			raw['deprecated'] = true
		})
		expect(tempFiles(dir.path)).toEqual([])
		// only the registry and its state database (the write lock, with its WAL files)
		expect(readdirSync(dir.path).filter((n) => !n.startsWith('r.state.sqlite'))).toEqual(['r.json'])
		expect(statSync(path).mode & 0o777).toBe(0o640)
		expect(readJson<Raw[]>(path)[0]?.['deprecated']).toBe(true)
	})

	test('leftover temporary files of a dead writer are swept under the lock', async () => {
		using dir = tempDir()
		const path = writeRegistry(join(dir.path, 'r.json'), [entry('a')])
		writeFileSync(join(dir.path, '.r.json.99999.1700000000000.tmp'), '[{"half": ')
		writeFileSync(join(dir.path, '.other.json.1.2.tmp'), 'not ours')
		using store = openStore(path)
		await store.updateEntry('a', () => undefined)
		expect(tempFiles(dir.path)).toEqual(['.other.json.1.2.tmp']) // another registry's are left alone
	})

	test('a read-only (immutable) folder is a clear error and keeps the file', async () => {
		using dir = tempDir()
		const folder = join(dir.path, 'ro')
		const path = writeRegistry(join(folder, 'r.json'), [entry('a')])
		{
			using first = openStore(path)
			await first.updateEntry('a', () => undefined) // the state database exists, as after any write
		}
		const before = readFileSync(path)
		const change = (raw: Raw) => {
			raw['deprecated'] = true
		}

		// a process that starts now: SQLite cannot create its WAL files beside the database
		let restore = makeReadOnly(folder)
		try {
			using fresh = openStore(path)
			const err = await rejected(RegistryWriteError, fresh.updateEntry('a', change))
			expect(err.message).toStartWith(`Could not write ${statePathFor(path)}: cannot open the state database (`)
			expect(err.message).toContain(`permission denied: ${folder} is not writable`)
			expect(err.message).toEndWith('The previous file is intact; free disk space or fix the folder permissions and retry')
		} finally {
			restore()
		}

		// a process that had the database open before: the temporary file cannot be created
		using stillOpen = openStore(path)
		await stillOpen.updateEntry('a', () => undefined)
		restore = makeReadOnly(folder)
		try {
			const err = await rejected(RegistryWriteError, stillOpen.updateEntry('a', change))
			expect(err.message).toBe(
				`Could not write ${path}: permission denied. The previous file is intact; free disk space or fix the folder permissions and retry`
			)
		} finally {
			restore()
		}
		expect(readFileSync(path)).toEqual(before)
		expect(tempFiles(folder)).toEqual([])
	})

	test('the disk filling up during the write is a clear error, and the old file stays', async () => {
		using dir = tempDir()
		const path = writeRegistry(join(dir.path, 'r.json'), [entry('a')])
		const before = readFileSync(path)
		using store = openStore(path)
		const full = spyOn(fs, 'fsyncSync').mockImplementation(() => {
			throw Object.assign(new Error('ENOSPC: no space left on device, fsync'), { code: 'ENOSPC' })
		})
		try {
			const err = await rejected(
				RegistryWriteError,
				store.updateEntry('a', (raw) => {
					raw['deprecated'] = true
				})
			)
			expect(err.message).toBe(
				`Could not write ${path}: the disk is full. The previous file is intact; free disk space or fix the folder permissions and retry`
			)
			expect(full).toHaveBeenCalled()
		} finally {
			full.mockRestore()
		}
		expect(readFileSync(path)).toEqual(before)
		expect(tempFiles(dir.path)).toEqual([])
		// and the store still works once there is room again
		await store.updateEntry('a', (raw) => {
			raw['deprecated'] = true
		})
		expect(readJson<Raw[]>(path)[0]?.['deprecated']).toBe(true)
	})

	test('a lock timeout names the lock (the state database) and says to retry', async () => {
		using dir = tempDir()
		const path = writeRegistry(join(dir.path, 'r.json'), [entry('a')])
		{
			using creator = openStore(path)
			await creator.updateEntry('a', () => undefined)
		}
		const holder = new Database(statePathFor(path))
		holder.exec('BEGIN IMMEDIATE') // another process in the middle of a write
		try {
			using waiter = openStore(path, { lockTimeout: 0.2 })
			const started = performance.now()
			const err = await rejected(LockTimeout, waiter.updateEntry('a', () => undefined))
			expect(performance.now() - started).toBeGreaterThanOrEqual(190)
			expect(err).toBeInstanceOf(RegistryError)
			expect(err.message).toBe(
				`Timed out after 0.2s waiting for the write lock of ${statePathFor(path)}: another imageworks-loader ` +
					'process is writing. Retry in a moment'
			)
		} finally {
			holder.exec('ROLLBACK')
			holder.close()
		}
	})

	test('twenty processes locking, unlocking and verifying different models lose nothing', async () => {
		using dir = tempDir()
		const names = Array.from({ length: 20 }, (_, i) => `model-${String(i).padStart(2, '0')}`)
		const entries = names.map((n) => {
			const folder = join(dir.path, 'models', n)
			mkdirSync(folder, { recursive: true })
			writeFileSync(join(folder, 'weights.bin'), `weights of ${n}`)
			writeFileSync(join(folder, 'config.json'), `{"name": ${JSON.stringify(n)}}`)
			return entry(n, { modelPath: folder, extra: { note: { keep: n } } })
		})
		const path = writeRegistry(join(dir.path, 'r.json'), entries)
		const env = { IMAGEWORKS_LOCK_TIMEOUT: '60' }
		const run = (...args: string[]) => runBinary(['--registry', path, ...args], { env })
		const results = await Promise.all(
			names.map(async (n) => [
				await run('verify', n),
				await run('lock', n, '--set-expected'),
				await run('unlock', n),
				await run('lock', n)
			])
		)
		for (const r of results.flat()) expect({ exitCode: r.exitCode, stderr: r.stderr }).toEqual({ exitCode: 0, stderr: '' })

		const text = readFileSync(path, 'utf8')
		const registry = parseRegistry(text, path) // the file is valid as a whole
		expect(registry.entries.map((e) => e.name)).toEqual(names)
		for (const e of readJson<Raw[]>(path)) {
			expect(e['version_lock']['locked']).toBe(true)
			expect(e['version_lock']['expected_aggregate_sha256']).toBe(e['artifacts']['aggregate_sha256'])
			expect(e['artifacts']['files'].map((f: Raw) => f['path'])).toEqual(['config.json', 'weights.bin'])
			expect(e['note']).toEqual({ keep: e['name'] })
		}
		expect(tempFiles(dir.path)).toEqual([])
		// every verify recorded its fingerprints: each locked model is selectable
		const deps = depsFor(path)
		try {
			for (const n of names) expect(selectModel(deps, { name: n }).locked).toBe(true)
		} finally {
			deps.state.close()
		}
	}, 60_000) // 80 processes: more than bun's 5 s default on a busy machine (bunfig's [test] timeout is not read)
})

/**
 * Make `folder` unwritable, and return the undo. Root ignores permission bits, so as root the
 * immutable attribute is used instead.
 */
function makeReadOnly(folder: string): () => void {
	if (process.getuid?.() === 0) {
		const set = Bun.spawnSync(['chattr', '+i', folder], { stderr: 'pipe' })
		if (set.exitCode !== 0) throw new Error(`chattr +i failed: ${set.stderr.toString()}`)
		return () => void Bun.spawnSync(['chattr', '-i', folder])
	}
	chmodSync(folder, 0o555)
	return () => chmodSync(folder, 0o755)
}
