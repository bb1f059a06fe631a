/**
 * The CLI as users run it: the compiled binary in a subprocess for exit codes and streams (a real
 * terminal through util-linux `script` where it matters), and `runCli` in-process for quick cases.
 */
import { describe, expect, test } from 'bun:test'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { runCli } from '../../src/cli/run.ts'
import type { Io } from '../../src/cli/output.ts'
import { cleanEnv, runBinary, type RunResult } from '../helpers/binary.ts'
import { BINARY, ROOT } from '../helpers/paths.ts'
import { readJson, tempDir, world } from '../helpers/registry.ts'

const COMMANDS = ['list', 'select', 'verify', 'lock', 'unlock', 'probe-vision', 'bench', 'metrics', 'serve', 'health']
const SCRIPT = Bun.which('script')
const ESC = '\x1b['

/** The binary with `--registry PATH` first, as most users call it. */
const cli = (registryPath: string, ...args: string[]) => runBinary(['--registry', registryPath, ...args])

/** `result` as one object, so a failure shows everything that was printed. */
const outcome = (r: RunResult) => ({ exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr })

/** Single-quote `s` for /bin/sh. */
const sh = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`

/** Run a shell command line on a pseudo-terminal (`script -qec CMD /dev/null`); returns what the terminal showed. */
async function onTerminal(command: string, env: Record<string, string> = {}): Promise<{ exitCode: number; screen: string }> {
	const proc = Bun.spawn([SCRIPT as string, '-qec', command, '/dev/null'], {
		env: cleanEnv(env),
		stdin: 'ignore',
		stdout: 'pipe',
		stderr: 'pipe'
	})
	const [screen, , exitCode] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited])
	return { exitCode, screen }
}

/** An Io that records what a command printed. */
function captured(options: { env?: Record<string, string>; tty?: boolean } = {}): Io & { out: string; err: string } {
	const io = {
		out: '',
		err: '',
		stdout: (text: string) => void (io.out += text),
		stderr: (text: string) => void (io.err += text),
		stderrIsTty: options.tty ?? false,
		stdoutIsTty: options.tty ?? false,
		env: options.env ?? {}
	}
	return io
}

const argv = (...args: string[]) => ['bun', 'imageworks-loader', ...args]

describe('list', () => {
	test('--json is sorted by name with canonical capabilities', async () => {
		using w = world()
		const r = await cli(w.registryPath, 'list', '--json')
		expect({ exitCode: r.exitCode, stderr: r.stderr }).toEqual({ exitCode: 0, stderr: '' })
		const rows = JSON.parse(r.stdout) as { name: string; capabilities: Record<string, boolean> }[]
		expect(rows.map((m) => m.name)).toEqual(['old', 'tiny', 'vision-a', 'vision-b'])
		expect(rows[3]?.capabilities).toEqual({ text: true, vision: true, audio: false, embedding: false, tools: false, thinking: false })
	})

	test('prints an aligned table, filtered by role, marking deprecated models', async () => {
		using w = world()
		const r = await cli(w.registryPath, 'list', '--role', 'caption')
		expect(outcome(r)).toEqual({
			exitCode: 0,
			stdout: [
				'NAME              BACKEND  CAPABILITIES       ROLES             LOCKED  VISION',
				'old (deprecated)  vllm     text               caption,keywords  no      -',
				'vision-a          vllm     text,vision,tools  caption,keywords  no      -',
				'vision-b          ollama   text,vision        caption           no      -',
				''
			].join('\n'),
			stderr: ''
		})
	})

	test('reads the registry from IMAGEWORKS_REGISTRY, and --registry wins over it', async () => {
		using w = world()
		const fromEnv = await runBinary(['list', '--json'], { env: { IMAGEWORKS_REGISTRY: w.registryPath } })
		expect(fromEnv.exitCode).toBe(0)
		expect(JSON.parse(fromEnv.stdout)).toHaveLength(4)
		const both = await runBinary(['--registry', w.registryPath, 'list', '--json'], {
			env: { IMAGEWORKS_REGISTRY: join(w.root, 'elsewhere.json') }
		})
		expect(both.exitCode).toBe(0)
		expect(JSON.parse(both.stdout)).toHaveLength(4)
	})

	test('defaults to configs/model_registry.json in the working directory', async () => {
		using w = world()
		const r = await runBinary(['list', '--json'], { cwd: w.root })
		expect(r.exitCode).toBe(0)
		expect(JSON.parse(r.stdout)).toHaveLength(4)
	})
})

describe('select', () => {
	test('--json by name with --require-vision, and by role with --require', async () => {
		using w = world()
		const byName = await cli(w.registryPath, 'select', 'vision-b', '--require-vision', '--json')
		expect({ exitCode: byName.exitCode, stderr: byName.stderr, body: JSON.parse(byName.stdout) }).toEqual({
			exitCode: 0,
			stderr: '',
			body: {
				name: 'vision-b',
				endpoint: 'http://gpu-box:11434/v1',
				backend: 'ollama',
				internal_model_id: 'vision-b:7b',
				capabilities: { text: true, vision: true, audio: false, embedding: false, tools: false, thinking: false },
				locked: false,
				deprecated: false,
				display_name: null
			}
		})
		const byRole = await cli(w.registryPath, 'select', '--role', 'caption', '--require', 'tools', '--json')
		expect(byRole.exitCode).toBe(0)
		expect(JSON.parse(byRole.stdout).name).toBe('vision-a')
	})

	test('prints label/value pairs for people', async () => {
		using w = world()
		expect(outcome(await cli(w.registryPath, 'select', 'tiny-alias'))).toEqual({
			exitCode: 0,
			stdout: [
				'name               tiny',
				'endpoint           http://localhost:8080/v1',
				'backend            llamacpp',
				'internal_model_id  tiny',
				'capabilities       text',
				'locked             no',
				''
			].join('\n'),
			stderr: ''
		})
	})
})

describe('failures', () => {
	// [args, exit code, what stderr says]
	const failures: [string[], number, string][] = [
		[['select', 'tiyn'], 1, 'No model named "tiyn" in the registry. Did you mean "tiny"?'],
		[['select', 'tiny', '--require-vision'], 1, 'Model "tiny" lacks required capability: vision'],
		[['select', 'tiny', '--require', 'telepathy'], 2, 'Unknown capability: telepathy. Known: audio, embedding, text, thinking, tools, vision'],
		[['select'], 2, 'give a model NAME or --role ROLE (exactly one)'],
		[['select', 'tiny', '--role', 'x'], 2, 'exactly one'],
		[['select', '--role', 'nobody'], 1, 'No model can serve role "nobody"'],
		[['select', '../x'], 2, 'Invalid model name "../x"'],
		[['verify', 'vision-a'], 1, 'backend_config.model_path is not set'],
		[['verify', 'ghost'], 1, 'No model named "ghost"'],
		[['lock', 'ghost'], 1, 'No model named "ghost"'],
		[['unlock', 'ghost'], 1, 'No model named "ghost"'],
		[['frobnicate'], 2, 'unknown command "frobnicate"'],
		[['list', '--bogus'], 2, 'Unknown option `--bogus`'],
		[['verify'], 2, 'missing required args for command `verify <name>`'],
		[['serve', '--port', '99999'], 2, '--port 99999 is not a port number']
	]
	test.each(failures)('%p exits %d with a clear message', async (args, code, needle) => {
		using w = world()
		const r = await cli(w.registryPath, ...args)
		expect({ exitCode: r.exitCode, stdout: r.stdout, firstLine: r.stderr.split('\n')[0] }).toEqual({
			exitCode: code,
			stdout: '',
			firstLine: expect.stringContaining(needle)
		})
		expect(r.stderr).toStartWith('error: ')
		expect(r.stderr).not.toMatch(/^\s+at |\.ts:\d+|node_modules/m)
	})

	test.each([
		[['select'], 'select [name]'],
		[['select', 'tiny', '--role', 'x'], 'select [name]'],
		[['list', '--bogus'], 'list'],
		[['verify'], 'verify <name>'],
		[['lock', 'tiny', '--replace'], 'lock <name>']
	])("usage error %p prints the command's help on stderr", async (args, usage) => {
		using w = world()
		const r = await cli(w.registryPath, ...args)
		expect({ exitCode: r.exitCode, stdout: r.stdout }).toEqual({ exitCode: 2, stdout: '' })
		expect(r.stderr).toContain(`Usage:\n  $ imageworks-loader ${usage}\n`)
		expect(r.stderr).toContain('Examples:')
		expect(r.stderr).not.toContain('Commands:')
	})

	test('an unknown command prints the list of commands on stderr', async () => {
		using w = world()
		const r = await cli(w.registryPath, 'frobnicate')
		expect({ exitCode: r.exitCode, stdout: r.stdout }).toEqual({ exitCode: 2, stdout: '' })
		for (const command of COMMANDS) expect(r.stderr).toContain(`\n  $ imageworks-loader ${command} --help`)
	})

	test('no command at all is a usage error that shows the help', async () => {
		const r = await runBinary([])
		expect({ exitCode: r.exitCode, stdout: r.stdout }).toEqual({ exitCode: 2, stdout: '' })
		expect(r.stderr).toContain('Usage:\n  $ imageworks-loader <command> [options]')
	})

	test('a missing registry says how to point at one', async () => {
		using dir = tempDir()
		const missing = join(dir.path, 'none.json')
		expect(outcome(await runBinary(['--registry', missing, 'list']))).toEqual({
			exitCode: 1,
			stdout: '',
			stderr: `error: Registry not found: ${missing}. Pass --registry PATH or set IMAGEWORKS_REGISTRY\n`
		})
	})

	test('an invalid registry names the file, the entry and the field', async () => {
		using dir = tempDir()
		const path = join(dir.path, 'r.json')
		writeFileSync(path, JSON.stringify([{ name: 'a', backend: 'x' }, { name: 'a', backend: 'y' }, { name: '.x', backend: 'z' }]))
		const r = await runBinary(['--registry', path, 'list'])
		expect({ exitCode: r.exitCode, stdout: r.stdout }).toEqual({ exitCode: 1, stdout: '' })
		expect(r.stderr).toContain(`Registry ${path} is invalid`)
		expect(r.stderr).toContain('entry 2 (".x"): field name: name must not start with "."')
	})

	// Core bug (reported): entry problems hide the duplicate-name problem; DESIGN asks for every problem at once.
	test('an invalid registry lists every problem, duplicate names included', async () => {
		using dir = tempDir()
		const path = join(dir.path, 'r.json')
		writeFileSync(path, JSON.stringify([{ name: 'a', backend: 'x' }, { name: 'a', backend: 'y' }, { name: '.x', backend: 'z' }]))
		const r = await runBinary(['--registry', path, 'list'])
		expect(r.exitCode).toBe(1)
		expect(r.stderr).toContain('(2 problems)')
		expect(r.stderr).toContain('duplicate name "a": entries 0 and 1')
		expect(r.stderr).toContain('entry 2 (".x"): field name')
	})

	test.each([
		['IMAGEWORKS_LOCK_TIMEOUT', '-1'],
		['IMAGEWORKS_LOCK_TIMEOUT', 'soon'],
		['IMAGEWORKS_LOCK_TIMEOUT', '0'],
		['IMAGEWORKS_PROBE_TIMEOUT', 'soon'],
		['IMAGEWORKS_PROBE_TIMEOUT', '0'],
		['IMAGEWORKS_PROBE_TIMEOUT', '-5'],
		['IMAGEWORKS_PROBE_TIMEOUT', 'Infinity'],
		['IMAGEWORKS_CHECK_TIMEOUT', '1s']
	])('a bad setting %s=%s is a usage error naming the variable', async (name, value) => {
		using w = world()
		const r = await runBinary(['--registry', w.registryPath, 'list'], { env: { [name]: value } })
		expect(outcome(r)).toEqual({
			exitCode: 2,
			stdout: '',
			stderr: `error: ${name}=${JSON.stringify(value)} must be a positive number of seconds\n`
		})
	})

	test.each([['0'], ['-3'], ['2.5'], ['many'], ['1e3']])('a bad setting IMAGEWORKS_METRICS_WINDOW=%s is a usage error naming the variable', async (value) => {
		using w = world()
		const r = await runBinary(['--registry', w.registryPath, 'metrics'], { env: { IMAGEWORKS_METRICS_WINDOW: value } })
		expect(outcome(r)).toEqual({
			exitCode: 2,
			stdout: '',
			stderr: `error: IMAGEWORKS_METRICS_WINDOW=${JSON.stringify(value)} must be a positive integer\n`
		})
	})

	test('a bad setting stops serve before it binds', async () => {
		using w = world()
		const r = await runBinary(['--registry', w.registryPath, 'serve', '--port', '0'], { env: { IMAGEWORKS_PROBE_TIMEOUT: 'soon' } })
		expect(outcome(r)).toEqual({ exitCode: 2, stdout: '', stderr: 'error: IMAGEWORKS_PROBE_TIMEOUT="soon" must be a positive number of seconds\n' })
	})
})

describe('verify, lock, unlock', () => {
	test('verify, lock with the expected hash, refuse drift, unlock', async () => {
		using w = world()
		const verified = await cli(w.registryPath, 'verify', 'tiny')
		expect({ exitCode: verified.exitCode, stderr: verified.stderr }).toEqual({ exitCode: 0, stderr: '' })
		expect(verified.stdout).toMatch(/^ok {2}tiny {2}4 files, 423\.5 KB in \d+\.\d\d s\naggregate_sha256 {2}[0-9a-f]{64}\n$/)
		const aggregate = verified.stdout.slice(-65, -1)

		const locked = await cli(w.registryPath, 'lock', 'tiny', '--set-expected', '--json')
		expect({ exitCode: locked.exitCode, body: JSON.parse(locked.stdout) }).toEqual({
			exitCode: 0,
			body: { name: 'tiny', locked: true, expected_aggregate_sha256: aggregate, changed: true }
		})
		expect(readJson<{ version_lock: unknown }[]>(w.registryPath)[0]?.version_lock).toEqual({
			locked: true,
			expected_aggregate_sha256: aggregate,
			last_verified: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$/)
		})
		expect((await cli(w.registryPath, 'select', 'tiny')).exitCode).toBe(0)

		writeFileSync(join(w.modelDir, 'model-00001-of-00002.safetensors'), 'swapped')
		const refused = await cli(w.registryPath, 'select', 'tiny')
		expect({ exitCode: refused.exitCode, stdout: refused.stdout }).toEqual({ exitCode: 1, stdout: '' })
		expect(refused.stderr).toContain('changed: model-00001-of-00002.safetensors')
		expect(refused.stderr).toContain('Run "imageworks-loader verify tiny"')

		const reverified = await cli(w.registryPath, 'verify', 'tiny', '--json')
		expect({ exitCode: reverified.exitCode, stdout: reverified.stdout }).toEqual({ exitCode: 1, stdout: '' })
		expect(reverified.stderr).toContain(`Expected aggregate sha256 ${aggregate}, got `)
		expect(reverified.stderr).toContain('lock tiny --set-expected --replace')

		expect(outcome(await cli(w.registryPath, 'unlock', 'tiny'))).toEqual({
			exitCode: 0,
			stdout: `tiny: unlocked\nexpected_aggregate_sha256  ${aggregate}\n`,
			stderr: ''
		})
		expect((await cli(w.registryPath, 'select', 'tiny')).exitCode).toBe(0)
	})
})

describe('help and version', () => {
	test('--help lists every command, with nothing else in the environment (env -i)', async () => {
		const proc = Bun.spawn(['env', '-i', BINARY, '--help'], { stdin: 'ignore', stdout: 'pipe', stderr: 'pipe' })
		const [stdout, stderr, exitCode] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited])
		expect({ exitCode, stderr }).toEqual({ exitCode: 0, stderr: '' })
		expect(stdout).toContain('Usage:\n  $ imageworks-loader <command> [options]')
		const listed = [...stdout.matchAll(/^ {2}(\w[\w-]*) .*$/gm)].map((m) => m[1])
		expect(listed).toEqual(COMMANDS)
	})

	test('--version prints the version and the commit it was built from', async () => {
		const r = await runBinary(['--version'])
		const version = readJson<{ version: string }>(join(ROOT, 'package.json')).version
		expect({ exitCode: r.exitCode, stderr: r.stderr }).toEqual({ exitCode: 0, stderr: '' })
		const match = /^imageworks-loader\/(\S+) \(commit ([0-9a-f]{7,40})(-dirty)?\)/.exec(r.stdout)
		expect(match?.[1]).toBe(version)
		const commit = match?.[2] as string
		const known = Bun.spawnSync(['git', 'cat-file', '-e', `${commit}^{commit}`], { cwd: ROOT })
		expect({ commit, known: known.exitCode === 0 }).toEqual({ commit, known: true })
	})

	test.each(COMMANDS)('%s --help shows usage and an example', async (command) => {
		const io = captured()
		expect(await runCli(argv(command, '--help'), io)).toBe(0)
		expect(io.err).toBe('')
		expect(io.out).toContain(`Usage:\n  $ imageworks-loader ${command}`)
		expect(io.out).toContain(`Examples:\n  $ imageworks-loader ${command}`)
	})
})

describe('terminal or pipe', () => {
	test('on a pipe only the result is printed: no progress, no escape codes', async () => {
		using w = world()
		const r = await cli(w.registryPath, 'verify', 'tiny')
		expect({ exitCode: r.exitCode, stderr: r.stderr }).toEqual({ exitCode: 0, stderr: '' })
		expect(r.stdout).toMatch(/^ok {2}tiny {2}4 files, 423\.5 KB in \d+\.\d\d s\naggregate_sha256 {2}[0-9a-f]{64}\n$/)
		const table = await cli(w.registryPath, 'list')
		expect(table.stdout).toStartWith('NAME ')
		expect(table.stdout + table.stderr).not.toContain(ESC)
	})

	test.skipIf(!SCRIPT)('on a terminal verify shows a progress bar on stderr, while a piped stdout gets the result only', async () => {
		using w = world()
		const out = join(w.root, 'stdout.txt')
		const t = await onTerminal(`${sh(BINARY)} --registry ${sh(w.registryPath)} verify tiny > ${sh(out)}`)
		expect(t.exitCode).toBe(0)
		expect(t.screen).toMatch(/^\rVerifying \[[#-]{30}\] +\d+% .*B\/423\.5 KB .*B\/s\x1b\[K/)
		expect(t.screen).toEndWith('\r\x1b[K')
		expect(await Bun.file(out).text()).toMatch(/^ok {2}tiny {2}4 files, 423\.5 KB in \d+\.\d\d s\naggregate_sha256 {2}[0-9a-f]{64}\n$/)
	})

	test.skipIf(!SCRIPT)('on a terminal errors are red, unless NO_COLOR is set', async () => {
		using w = world()
		const command = `${sh(BINARY)} --registry ${sh(w.registryPath)} select ghost`
		const red = await onTerminal(command)
		expect(red).toEqual({ exitCode: 1, screen: expect.stringMatching(/^\x1b\[31merror\x1b\[39m: No model named "ghost"/) })
		const plain = await onTerminal(command, { NO_COLOR: '1' })
		expect(plain).toEqual({ exitCode: 1, screen: expect.stringMatching(/^error: No model named "ghost"/) })
		expect(plain.screen).not.toContain(ESC)
	})

	test.skipIf(!SCRIPT)('a table written to a file from a terminal has no escape codes', async () => {
		using w = world()
		const out = join(w.root, 'table.txt')
		const t = await onTerminal(`${sh(BINARY)} --registry ${sh(w.registryPath)} list > ${sh(out)}`)
		expect(t).toEqual({ exitCode: 0, screen: '' })
		const table = await Bun.file(out).text()
		expect(table).toStartWith('NAME              BACKEND   CAPABILITIES')
		expect(table).not.toContain(ESC)
	})

	test.skipIf(!SCRIPT)('on a terminal the table header is bold, unless NO_COLOR is set', async () => {
		using w = world()
		const command = `${sh(BINARY)} --registry ${sh(w.registryPath)} list`
		expect((await onTerminal(command)).screen).toStartWith('\x1b[1mNAME ')
		const plain = await onTerminal(command, { NO_COLOR: '1' })
		expect(plain.screen).toStartWith('NAME ')
		expect(plain.screen).not.toContain(ESC)
	})
})

describe('runCli in-process', () => {
	test('list --json writes JSON to stdout and returns 0', async () => {
		using w = world()
		const io = captured({ env: { IMAGEWORKS_REGISTRY: w.registryPath } })
		expect(await runCli(argv('list', '--json'), io)).toBe(0)
		expect({ err: io.err, names: (JSON.parse(io.out) as { name: string }[]).map((m) => m.name) }).toEqual({
			err: '',
			names: ['old', 'tiny', 'vision-a', 'vision-b']
		})
	})

	test('a usage error returns 2 with the message and the help on stderr, nothing on stdout', async () => {
		using w = world()
		const io = captured()
		expect(await runCli(argv('--registry', w.registryPath, 'select', 'tiny', '--role', 'caption'), io)).toBe(2)
		expect(io.out).toBe('')
		expect(io.err).toStartWith('error: give a model NAME or --role ROLE (exactly one)\n')
		expect(io.err).toContain('$ imageworks-loader select [name]')
	})

	test('a failed operation returns 1 with one line on stderr', async () => {
		using w = world()
		const io = captured()
		expect(await runCli(argv('--registry', w.registryPath, 'verify', 'ghost'), io)).toBe(1)
		expect({ out: io.out, err: io.err }).toEqual({
			out: '',
			err: 'error: No model named "ghost" in the registry. Run "imageworks-loader list" to see them\n'
		})
	})

	test('with a terminal, verify draws and then clears a progress bar on stderr', async () => {
		using w = world()
		const io = captured({ tty: true })
		expect(await runCli(argv('--registry', w.registryPath, 'verify', 'tiny'), io)).toBe(0)
		expect(io.err).toMatch(/^\rVerifying \[[#-]{30}\] +\d+% /)
		expect(io.err).toEndWith('\r\x1b[K')
		expect(io.out).toStartWith('ok  tiny  4 files, 423.5 KB in ')
	})

	test('without a terminal, verify prints nothing on stderr', async () => {
		using w = world()
		const io = captured({ tty: false })
		expect(await runCli(argv('--registry', w.registryPath, 'verify', 'tiny'), io)).toBe(0)
		expect(io.err).toBe('')
		expect(io.out).not.toContain(ESC)
	})

	test('NO_COLOR keeps a terminal free of escape codes except the progress bar', async () => {
		using w = world()
		const io = captured({ tty: true, env: { NO_COLOR: '1' } })
		expect(await runCli(argv('--registry', w.registryPath, 'list'), io)).toBe(0)
		expect(await runCli(argv('--registry', w.registryPath, 'select', 'ghost'), io)).toBe(1)
		expect(io.out).toStartWith('NAME ')
		expect(io.out + io.err).not.toContain(ESC)
		expect(io.err).toStartWith('error: No model named "ghost"')
	})

	test('--version prints the version to stdout', async () => {
		const io = captured()
		expect(await runCli(argv('--version'), io)).toBe(0)
		expect(io.out).toStartWith(`imageworks-loader/${readJson<{ version: string }>(join(ROOT, 'package.json')).version} (commit `)
	})
})
