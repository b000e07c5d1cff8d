// Runs resolc (npm @parity/resolc, which drives solc) on the sources given on stdin and
// writes its standard-JSON output to stdout.  Input: {"sources": {unit: {content}}}
// with every imported file already present under the unit name solc asks for
// (contracts/build.py resolves imports and remappings), so no import callback runs.
const resolc = require('@parity/resolc');
const solc = require('solc');

// resolc.compile throws on solc errors with only the first formatted message; ask
// solc itself (analysis only) for all of them, with their source locations.
function solcErrors(sources) {
  const input = {language: 'Solidity', sources, settings: {outputSelection: {}}};
  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  return (output.errors || []).filter((e) => e.severity === 'error');
}

let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', async () => {
  try {
    const request = JSON.parse(input);
    let output;
    try {
      output = await resolc.compile(request.sources);
    } catch (err) {
      const errors = solcErrors(request.sources);
      if (errors.length === 0) throw err;
      output = {errors};
    }
    process.stdout.write(JSON.stringify(output));
  } catch (err) {
    process.stderr.write(String(err && err.stack ? err.stack : err));
    process.exit(2);
  }
});
