import MSBCore
import MSBOS
import MSBProtocol
import MSBVMM
/// The small programs that turn a guest's python3 or node into a long-lived REPL the
/// supervisor feeds. Each request is `<len>\n<code>`; after running it the driver
/// writes `\u{1e}MSB<nonce> <status>\n` on stdout and `\u{1e}MSB<nonce>\n` on stderr,
/// so the supervisor knows both streams are complete. The nonce comes from the
/// environment and is removed from it before user code runs.
enum InterpreterDrivers {
    struct Driver {
        let argv: [String]
        let displayName: String
    }

    static func driver(for language: String) -> Driver? {
        switch language.lowercased() {
        case "python", "python3", "py": return Driver(argv: ["python3", "-u", "-c", python], displayName: "python")
        case "node", "nodejs", "javascript", "js": return Driver(argv: ["node", "-e", node], displayName: "node")
        default: return nil
        }
    }

    static let python = #"""
import os, sys, traceback, signal
marker = "\x1eMSB" + os.environ.pop("MSB_REPL_NONCE", "")
scope = {"__name__": "__main__", "__builtins__": __builtins__}
source = sys.stdin.buffer
def run(code):
    try:
        try:
            compiled, is_expression = compile(code, "<repl>", "eval"), True
        except SyntaxError:
            compiled, is_expression = compile(code, "<repl>", "exec"), False
        if is_expression:
            value = eval(compiled, scope)
            if value is not None:
                print(repr(value))
        else:
            exec(compiled, scope)
        return "success"
    except SystemExit as e:
        print("SystemExit: %s" % (e.code,), file=sys.stderr)
        return "exception"
    except BaseException:
        etype, evalue, tb = sys.exc_info()
        traceback.print_exception(etype, evalue, tb.tb_next if tb is not None else None)
        return "exception"
while True:
    try:
        header = source.readline()
        if not header:
            break
        code = source.read(int(header)).decode("utf-8", "replace")
    except KeyboardInterrupt:
        continue
    status = run(code)
    try:
        sys.stdout.flush(); sys.stderr.flush()
    except Exception:
        pass
    sys.stdout.write("%s %s\n" % (marker, status)); sys.stdout.flush()
    sys.stderr.write(marker + "\n"); sys.stderr.flush()
"""#

    static let node = #"""
const vm = require('vm'), util = require('util');
const marker = '\x1eMSB' + (process.env.MSB_REPL_NONCE || '');
delete process.env.MSB_REPL_NONCE;
const context = vm.createContext({ require, console, process, Buffer, setTimeout, setInterval, clearTimeout,
  clearInterval, setImmediate, URL, TextEncoder, TextDecoder });
let buffer = Buffer.alloc(0);
function run(code) {
  try {
    const value = vm.runInContext(code, context, { filename: 'repl', breakOnSigint: true });
    if (value !== undefined) process.stdout.write(util.inspect(value) + '\n');
    return 'success';
  } catch (e) {
    process.stderr.write((e && e.stack ? e.stack : String(e)) + '\n');
    return 'exception';
  }
}
process.stdin.on('data', (chunk) => {
  buffer = Buffer.concat([buffer, chunk]);
  for (;;) {
    const newline = buffer.indexOf(10);
    if (newline < 0) return;
    const length = parseInt(buffer.subarray(0, newline).toString(), 10);
    if (buffer.length < newline + 1 + length) return;
    const code = buffer.subarray(newline + 1, newline + 1 + length).toString();
    buffer = buffer.subarray(newline + 1 + length);
    const status = run(code);
    process.stdout.write(marker + ' ' + status + '\n');
    process.stderr.write(marker + '\n');
  }
});
process.on('SIGINT', () => {});
"""#
}
