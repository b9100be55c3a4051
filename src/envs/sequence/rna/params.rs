//! Reader for RNA energy parameter files in ViennaRNA's v2.0 text format.
//!
//! All values are free energies at 37 °C in dcal/mol (1/100 kcal/mol), stored
//! as integers exactly as they appear in the file.  Enthalpy sections are read
//! and checked but not kept, since only 37 °C is modelled.
//!
//! # Indexing conventions
//!
//! * Pair types: 0 = no pair, 1 = CG, 2 = GC, 3 = GU, 4 = UG, 5 = AU, 6 = UA,
//!   7 = nonstandard (`@`).  A pair type names the 5' base first.
//! * Bases: 0 = unknown (`@`/N), 1 = A, 2 = C, 3 = G, 4 = U.
//! * Loop-length tables are indexed by the number of unpaired bases, 0..=30.
//!
//! Table entries that a file does not provide (the pair-type-0 rows, and for
//! `int22` the nonstandard pair type 7) are set to [`INF`].
//!
//! # Special tokens
//!
//! `DEF` reads as [`DEF`] (-50), `INF` as [`INF`], `NST` as 0, and `x`
//! extrapolates a loop-length table from the last number with the
//! logarithmic rule `last + round(lxc * ln(n / n_last))` (lxc = 107.856).
//! `*` ("keep the built-in default") is rejected, because this reader has no
//! built-in parameter set.

use std::collections::HashSet;

/// "Infinite" energy: a forbidden configuration (dcal/mol).
pub const INF: i32 = 10_000_000;
/// The value of the `DEF` token (dcal/mol).
pub const DEF: i32 = -50;
/// Highest pair-type code (7 = nonstandard pair).
pub const NBPAIRS: usize = 7;
/// Largest loop length for which the loop tables hold a value.
pub const MAXLOOP: usize = 30;

/// Default coefficient of the logarithmic loop-length extrapolation (dcal/mol).
const LXC_DEFAULT: f64 = 107.856;

/// A 5' × 3' terminal-mismatch table for each pair type: `[pair][5' base][3' base]`.
pub type MismatchTable = [[[i32; 5]; 5]; NBPAIRS + 1];
/// A single-base dangle table for each pair type: `[pair][base]`.
pub type DangleTable = [[i32; 5]; NBPAIRS + 1];
/// 1×1 interior loops: `[outer pair][inner pair][x][y]`.
pub type Int11Table = [[[[i32; 5]; 5]; NBPAIRS + 1]; NBPAIRS + 1];
/// 2×1 interior loops: `[outer pair][inner pair][x][y][z]`.
pub type Int21Table = [[[[[i32; 5]; 5]; 5]; NBPAIRS + 1]; NBPAIRS + 1];
/// 2×2 interior loops: `[outer pair][inner pair][a][b][c][d]`.
pub type Int22Table = [[[[[[i32; 5]; 5]; 5]; 5]; NBPAIRS + 1]; NBPAIRS + 1];

/// Turner energy parameters at 37 °C, integer dcal/mol, as read from a ViennaRNA v2.0 parameter file.
///
/// Tables are kept as in the file (no clipping of positive dangles; that is
/// a model choice left to the energy evaluator).
#[derive(Clone, Debug)]
pub struct EnergyParams {
    /// `stack`: stacking of two consecutive pairs, `[outer pair][inner pair reversed]`.
    pub stack: [[i32; NBPAIRS + 1]; NBPAIRS + 1],
    /// `hairpin`: hairpin loop initiation by size.
    pub hairpin: [i32; MAXLOOP + 1],
    /// `bulge`: bulge loop initiation by size.
    pub bulge: [i32; MAXLOOP + 1],
    /// `internal`: generic interior loop initiation by total size.
    pub internal: [i32; MAXLOOP + 1],
    /// `mismatch_hairpin`: terminal mismatches in hairpin loops.
    pub mismatch_hairpin: MismatchTable,
    /// `mismatch_internal`: terminal mismatches in generic interior loops.
    pub mismatch_internal: MismatchTable,
    /// `mismatch_internal_1n`: terminal mismatches in 1×n interior loops.
    pub mismatch_internal_1n: MismatchTable,
    /// `mismatch_internal_23`: terminal mismatches in 2×3 interior loops.
    pub mismatch_internal_23: MismatchTable,
    /// `mismatch_multi`: terminal mismatches in multibranch loops.
    pub mismatch_multi: MismatchTable,
    /// `mismatch_exterior`: terminal mismatches in the exterior loop.
    pub mismatch_exterior: MismatchTable,
    /// `dangle5`: a base dangling 5' of a pair, `[pair][base]`.
    pub dangle5: DangleTable,
    /// `dangle3`: a base dangling 3' of a pair, `[pair][base]`.
    pub dangle3: DangleTable,
    /// `int11`: 1×1 interior loops.
    pub int11: Box<Int11Table>,
    /// `int21`: 2×1 interior loops.
    pub int21: Box<Int21Table>,
    /// `int22`: 2×2 interior loops.  Entries with an unknown base (index 0)
    /// hold the maximum over the four real bases at those positions.
    pub int22: Box<Int22Table>,
    /// `ML_params`: multiloop energy per unpaired base.
    pub ml_base: i32,
    /// `ML_params`: multiloop closing energy.
    pub ml_closing: i32,
    /// `ML_params`: multiloop energy per branch.
    pub ml_intern: i32,
    /// `NINIO`: asymmetry penalty per unpaired base of imbalance.
    pub ninio: i32,
    /// `NINIO`: maximum asymmetry penalty.
    pub max_ninio: i32,
    /// `Misc`: duplex (intermolecular) initiation.
    pub duplex_init: i32,
    /// `Misc`: penalty for a terminal AU or GU pair.
    pub terminal_au: i32,
    /// `Misc`: coefficient of the logarithmic extrapolation of loops beyond 30.
    pub lxc: f64,
    /// `Tetraloops`: special hairpins (sequence with closing pair, energy).
    pub tetraloops: Vec<(String, i32)>,
    /// `Triloops`: special hairpins (sequence with closing pair, energy).
    pub triloops: Vec<(String, i32)>,
    /// `Hexaloops`: special hairpins (sequence with closing pair, energy).
    pub hexaloops: Vec<(String, i32)>,
}

/// Sections that must be present for the duplex model.
const REQUIRED: &[&str] = &[
    "stack",
    "bulge",
    "internal",
    "mismatch_internal",
    "mismatch_internal_1n",
    "mismatch_internal_23",
    "mismatch_exterior",
    "dangle5",
    "dangle3",
    "int11",
    "int21",
    "int22",
    "NINIO",
    "Misc",
];

impl EnergyParams {
    /// Parse the text of a v2.0 parameter file; errors name the section and the line.
    ///
    /// The first line must be the `## RNAfold parameter file v2.0` header.
    /// Sections start with a line `# name`; unknown sections are skipped, and
    /// parsing stops at `# END`.  Every section the duplex model needs must be
    /// present.
    pub fn parse(text: &str) -> Result<EnergyParams, String> {
        let mut reader = Reader::new(text);
        match reader.lines.first() {
            Some(first) if first.starts_with("## RNAfold parameter file v2.0") => {}
            _ => {
                return Err("line 1: missing header `## RNAfold parameter file v2.0`".to_string());
            }
        }
        reader.pos = 1;

        let mut p = EnergyParams::blank();
        let mut seen: HashSet<String> = HashSet::new();

        while let Some(line) = reader.next_line() {
            let Some(name) = section_name(line) else {
                continue;
            };
            let name = name.to_string();
            let r = &mut reader;
            let s = name.as_str();
            match s {
                "END" => break,
                "stack" => r.read_pair_pair(s, &mut p.stack)?,
                "hairpin" => r.read_loop(s, &mut p.hairpin)?,
                "bulge" => r.read_loop(s, &mut p.bulge)?,
                "internal" | "interior" => r.read_loop(s, &mut p.internal)?,
                "mismatch_hairpin" => r.read_mismatch(s, &mut p.mismatch_hairpin)?,
                "mismatch_internal" | "mismatch_interior" => {
                    r.read_mismatch(s, &mut p.mismatch_internal)?
                }
                "mismatch_internal_1n" | "mismatch_interior_1n" => {
                    r.read_mismatch(s, &mut p.mismatch_internal_1n)?
                }
                "mismatch_internal_23" | "mismatch_interior_23" => {
                    r.read_mismatch(s, &mut p.mismatch_internal_23)?
                }
                "mismatch_multi" => r.read_mismatch(s, &mut p.mismatch_multi)?,
                "mismatch_exterior" => r.read_mismatch(s, &mut p.mismatch_exterior)?,
                "dangle5" => r.read_dangle(s, &mut p.dangle5)?,
                "dangle3" => r.read_dangle(s, &mut p.dangle3)?,
                "int11" => r.read_int11(s, &mut p.int11)?,
                "int21" => r.read_int21(s, &mut p.int21)?,
                "int22" => r.read_int22(s, &mut p.int22)?,
                "ML_params" => {
                    let v = r.read_ints(s, 6)?;
                    p.ml_base = v[0];
                    p.ml_closing = v[2];
                    p.ml_intern = v[4];
                }
                "NINIO" => {
                    let v = r.read_ints(s, 3)?;
                    p.ninio = v[0];
                    p.max_ninio = v[2];
                }
                "Misc" => {
                    let (v, rest) = r.read_values(s, 4)?;
                    p.duplex_init = v[0];
                    p.terminal_au = v[2];
                    // An optional fifth value is the loop extrapolation coefficient.
                    if let Some(tok) = rest.first() {
                        p.lxc = tok.parse::<f64>().map_err(|_| {
                            format!(
                                "section `Misc`, line {}: cannot read `{tok}` as a number",
                                r.pos
                            )
                        })?;
                    }
                }
                "Tetraloops" => p.tetraloops = r.read_special_hairpins(),
                "Triloops" => p.triloops = r.read_special_hairpins(),
                "Hexaloops" => p.hexaloops = r.read_special_hairpins(),
                enthalpy if enthalpy.ends_with("_enthalpies") => {
                    r.skip_enthalpies(enthalpy)?;
                }
                _ => {} // unknown section: its lines are skipped below
            }
            seen.insert(canonical_name(s).to_string());
        }

        let missing: Vec<&str> = REQUIRED
            .iter()
            .copied()
            .filter(|s| !seen.contains(*s))
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "missing section(s) {} (file ends at line {})",
                missing
                    .iter()
                    .map(|s| format!("`{s}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                reader.lines.len()
            ));
        }
        fill_int22_unknown_bases(&mut p.int22);
        Ok(p)
    }

    /// Parameters with every table entry set to [`INF`] and scalars to 0.
    fn blank() -> EnergyParams {
        EnergyParams {
            stack: [[INF; NBPAIRS + 1]; NBPAIRS + 1],
            hairpin: [INF; MAXLOOP + 1],
            bulge: [INF; MAXLOOP + 1],
            internal: [INF; MAXLOOP + 1],
            mismatch_hairpin: [[[INF; 5]; 5]; NBPAIRS + 1],
            mismatch_internal: [[[INF; 5]; 5]; NBPAIRS + 1],
            mismatch_internal_1n: [[[INF; 5]; 5]; NBPAIRS + 1],
            mismatch_internal_23: [[[INF; 5]; 5]; NBPAIRS + 1],
            mismatch_multi: [[[INF; 5]; 5]; NBPAIRS + 1],
            mismatch_exterior: [[[INF; 5]; 5]; NBPAIRS + 1],
            dangle5: [[INF; 5]; NBPAIRS + 1],
            dangle3: [[INF; 5]; NBPAIRS + 1],
            int11: Box::new([[[[INF; 5]; 5]; NBPAIRS + 1]; NBPAIRS + 1]),
            int21: Box::new([[[[[INF; 5]; 5]; 5]; NBPAIRS + 1]; NBPAIRS + 1]),
            int22: Box::new([[[[[[INF; 5]; 5]; 5]; 5]; NBPAIRS + 1]; NBPAIRS + 1]),
            ml_base: 0,
            ml_closing: 0,
            ml_intern: 0,
            ninio: 0,
            max_ninio: 0,
            duplex_init: 0,
            terminal_au: 0,
            lxc: LXC_DEFAULT,
            tetraloops: Vec::new(),
            triloops: Vec::new(),
            hexaloops: Vec::new(),
        }
    }
}

/// The identifier of a section header line (`# name`), if the line is one.
fn section_name(line: &str) -> Option<&str> {
    let rest = line.strip_prefix('#')?;
    rest.split_whitespace().next()
}

/// Map deprecated section names to their current spelling.
fn canonical_name(name: &str) -> &str {
    match name {
        "interior" => "internal",
        "mismatch_interior" => "mismatch_internal",
        "mismatch_interior_1n" => "mismatch_internal_1n",
        "mismatch_interior_23" => "mismatch_internal_23",
        other => other,
    }
}

/// Line-oriented reader over the file text.  `pos` is the index of the next
/// unread line, which is also the 1-based number of the last line read.
struct Reader<'a> {
    lines: Vec<&'a str>,
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(text: &'a str) -> Self {
        Reader {
            lines: text.lines().collect(),
            pos: 0,
        }
    }

    fn next_line(&mut self) -> Option<&'a str> {
        let line = self.lines.get(self.pos).copied();
        if line.is_some() {
            self.pos += 1;
        }
        line
    }

    /// Read `count` values starting on the next line, continuing over as
    /// many lines as needed.  Values left over on the last line are returned
    /// as raw tokens (each table row is read starting on a fresh line).
    fn read_values(
        &mut self,
        section: &str,
        count: usize,
    ) -> Result<(Vec<i32>, Vec<String>), String> {
        let mut out: Vec<i32> = Vec::with_capacity(count);
        // Index (within this read) of the last plain number, for `x`.
        let mut last_number: Option<usize> = None;
        while out.len() < count {
            let Some(line) = self.next_line() else {
                return Err(format!(
                    "section `{section}`: unexpected end of file after line {} \
                     ({} of {count} values read)",
                    self.pos,
                    out.len()
                ));
            };
            let line_no = self.pos;
            if section_name(line).is_some() {
                return Err(format!(
                    "section `{section}`, line {line_no}: a new section starts \
                     before the table is complete ({} of {count} values read)",
                    out.len()
                ));
            }
            let content = strip_comments(line)
                .map_err(|e| format!("section `{section}`, line {line_no}: {e}"))?;
            let mut tokens = content.split_whitespace();
            for tok in tokens.by_ref() {
                let value = match tok {
                    "DEF" => DEF,
                    "INF" => INF,
                    "NST" => 0,
                    "x" => {
                        let Some(last) = last_number.filter(|&l| l > 0) else {
                            return Err(format!(
                                "section `{section}`, line {line_no}: `x` needs \
                                 a preceding number to extrapolate from"
                            ));
                        };
                        let i = out.len();
                        out[last] + (0.5 + LXC_DEFAULT * (i as f64 / last as f64).ln()) as i32
                    }
                    "*" => {
                        return Err(format!(
                            "section `{section}`, line {line_no}: `*` (keep \
                             default) is not supported: there are no built-in defaults"
                        ));
                    }
                    _ => {
                        let v = tok.parse::<i32>().map_err(|_| {
                            format!(
                                "section `{section}`, line {line_no}: cannot read \
                                 `{tok}` as a number"
                            )
                        })?;
                        last_number = Some(out.len());
                        v
                    }
                };
                out.push(value);
                if out.len() == count {
                    break;
                }
            }
            if out.len() == count {
                return Ok((out, tokens.map(str::to_string).collect()));
            }
        }
        Ok((out, Vec::new()))
    }

    fn read_ints(&mut self, section: &str, count: usize) -> Result<Vec<i32>, String> {
        Ok(self.read_values(section, count)?.0)
    }

    fn read_loop(&mut self, section: &str, dst: &mut [i32; MAXLOOP + 1]) -> Result<(), String> {
        dst.copy_from_slice(&self.read_ints(section, MAXLOOP + 1)?);
        Ok(())
    }

    /// 7 rows (pair types 1..=7) of 7 values (pair types 1..=7).
    fn read_pair_pair(
        &mut self,
        section: &str,
        dst: &mut [[i32; NBPAIRS + 1]; NBPAIRS + 1],
    ) -> Result<(), String> {
        for row in dst.iter_mut().skip(1) {
            row[1..].copy_from_slice(&self.read_ints(section, NBPAIRS)?);
        }
        Ok(())
    }

    /// For each pair type 1..=7, a 5×5 block over bases 0..=4.
    fn read_mismatch(&mut self, section: &str, dst: &mut MismatchTable) -> Result<(), String> {
        for block in dst.iter_mut().skip(1) {
            let v = self.read_ints(section, 25)?;
            for (row, chunk) in block.iter_mut().zip(v.chunks_exact(5)) {
                row.copy_from_slice(chunk);
            }
        }
        Ok(())
    }

    /// For each pair type 1..=7, 5 values over bases 0..=4.
    fn read_dangle(&mut self, section: &str, dst: &mut DangleTable) -> Result<(), String> {
        for row in dst.iter_mut().skip(1) {
            row.copy_from_slice(&self.read_ints(section, 5)?);
        }
        Ok(())
    }

    /// For each pair of pair types 1..=7, a 5×5 block over bases 0..=4.
    fn read_int11(&mut self, section: &str, dst: &mut Int11Table) -> Result<(), String> {
        // Each outer pair type holds a mismatch-shaped table.
        for outer in dst.iter_mut().skip(1) {
            self.read_mismatch(section, outer)?;
        }
        Ok(())
    }

    /// For each pair of pair types 1..=7, a 5×5×5 block over bases 0..=4.
    fn read_int21(&mut self, section: &str, dst: &mut Int21Table) -> Result<(), String> {
        for outer in dst.iter_mut().skip(1) {
            for block in outer.iter_mut().skip(1) {
                let v = self.read_ints(section, 125)?;
                let mut it = v.chunks_exact(5);
                for plane in block.iter_mut() {
                    for row in plane.iter_mut() {
                        row.copy_from_slice(it.next().expect("125 values"));
                    }
                }
            }
        }
        Ok(())
    }

    /// For each pair of pair types 1..=6, rows of 4 values over bases 1..=4
    /// (unknown bases and the nonstandard pair are not in the file).
    fn read_int22(&mut self, section: &str, dst: &mut Int22Table) -> Result<(), String> {
        for outer in dst.iter_mut().take(NBPAIRS).skip(1) {
            for block in outer.iter_mut().take(NBPAIRS).skip(1) {
                for a in block.iter_mut().skip(1) {
                    for b in a.iter_mut().skip(1) {
                        for c in b.iter_mut().skip(1) {
                            c[1..].copy_from_slice(&self.read_ints(section, 4)?);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Read and discard an enthalpy table, checking it has the right shape.
    fn skip_enthalpies(&mut self, section: &str) -> Result<(), String> {
        let base = section.trim_end_matches("_enthalpies");
        let mut scratch = EnergyParams::blank();
        match canonical_name(base) {
            "stack" => self.read_pair_pair(section, &mut scratch.stack),
            "hairpin" | "bulge" | "internal" => self.read_loop(section, &mut scratch.hairpin),
            "mismatch_hairpin"
            | "mismatch_internal"
            | "mismatch_internal_1n"
            | "mismatch_internal_23"
            | "mismatch_multi"
            | "mismatch_exterior" => self.read_mismatch(section, &mut scratch.mismatch_hairpin),
            "dangle5" | "dangle3" => self.read_dangle(section, &mut scratch.dangle5),
            "int11" => self.read_int11(section, &mut scratch.int11),
            "int21" => self.read_int21(section, &mut scratch.int21),
            "int22" => self.read_int22(section, &mut scratch.int22),
            _ => Ok(()), // unknown: skipped like any unknown section
        }
    }

    /// Lines of `SEQUENCE energy enthalpy`, up to the first line that is not one.
    fn read_special_hairpins(&mut self) -> Vec<(String, i32)> {
        let mut out = Vec::new();
        while let Some(line) = self.lines.get(self.pos) {
            let mut it = line.split_whitespace();
            let (Some(seq), Some(e), Some(h)) = (it.next(), it.next(), it.next()) else {
                break;
            };
            let (Ok(e), Ok(_)) = (e.parse::<i32>(), h.parse::<i32>()) else {
                break;
            };
            out.push((seq.to_string(), e));
            self.pos += 1;
        }
        out
    }
}

/// Remove `/* ... */` comments from one line (comments do not span lines).
fn strip_comments(line: &str) -> Result<String, String> {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(start) = rest.find("/*") {
        out.push_str(&rest[..start]);
        out.push(' ');
        match rest[start + 2..].find("*/") {
            Some(end) => rest = &rest[start + 2 + end + 2..],
            None => return Err("unclosed comment".to_string()),
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Fill the `int22` entries that involve unknown bases (index 0) with the
/// maximum over the four real bases at every unknown position, for the six
/// standard pair types.
fn fill_int22_unknown_bases(t: &mut Int22Table) {
    for outer in t.iter_mut().take(NBPAIRS).skip(1) {
        for block in outer.iter_mut().take(NBPAIRS).skip(1) {
            for a in 0..5 {
                for b in 0..5 {
                    for c in 0..5 {
                        for d in 0..5 {
                            if a * b * c * d != 0 {
                                continue;
                            }
                            let range = |x: usize| if x == 0 { 1..5 } else { x..x + 1 };
                            let mut max = -INF;
                            for aa in range(a) {
                                for bb in range(b) {
                                    for cc in range(c) {
                                        for dd in range(d) {
                                            max = max.max(block[aa][bb][cc][dd]);
                                        }
                                    }
                                }
                            }
                            block[a][b][c][d] = max;
                        }
                    }
                }
            }
        }
    }
}

/// Parameter-file errors name the section (and the line where there is one).
#[cfg(test)]
mod parse_tests {
    use super::*;

    fn param_text() -> String {
        let path = crate::datasets::test_root().join("rna/rna_turner2004.par");
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn full_file_parses() {
        let p = EnergyParams::parse(&param_text()).unwrap();
        assert_eq!(p.stack[1][1], -240);
        assert_eq!(p.duplex_init, 410);
        assert_eq!(p.terminal_au, 50);
        assert_eq!((p.ninio, p.max_ninio), (60, 300));
        assert_eq!(p.lxc, 107.856);
        assert_eq!(p.dangle5[1][1], -50); // DEF
        assert_eq!(p.tetraloops.len(), 16);
        assert_eq!(p.triloops.len(), 2);
        assert_eq!(p.hexaloops.len(), 4);
    }

    #[test]
    fn truncated_inside_a_table() {
        let text = param_text();
        // Cut the file in the middle of the int21 table.
        let lines: Vec<&str> = text.lines().collect();
        let start = lines.iter().position(|l| *l == "# int21").unwrap();
        let cut = lines[..start + 100].join("\n");
        let err = EnergyParams::parse(&cut).unwrap_err();
        assert!(err.contains("`int21`"), "{err}");
        assert!(err.contains("end of file"), "{err}");
    }

    #[test]
    fn truncated_between_sections() {
        let text = param_text();
        let end = text.find("# int22\n").unwrap();
        let err = EnergyParams::parse(&text[..end]).unwrap_err();
        assert!(
            err.contains("missing section") && err.contains("`int22`"),
            "{err}"
        );
    }

    #[test]
    fn table_cut_short_by_next_section() {
        let text = param_text();
        // Drop the last row of the stack table.
        let bad = text.replace(
            "  -140  -150   130    30   -60   -90   130\n\n# stack_enthalpies",
            "\n# stack_enthalpies",
        );
        assert_ne!(bad, text);
        let err = EnergyParams::parse(&bad).unwrap_err();
        assert!(err.contains("`stack`") && err.contains("line 12"), "{err}");
    }

    #[test]
    fn non_number_in_a_table() {
        let text = param_text();
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        let start = lines.iter().position(|l| l == "# int11").unwrap();
        // The first data row of int11 follows its block comment.
        lines[start + 2] = "    90    9O    50    50    50".to_string();
        let err = EnergyParams::parse(&lines.join("\n")).unwrap_err();
        assert!(err.contains("`int11`"), "{err}");
        assert!(err.contains(&format!("line {}", start + 3)), "{err}");
        assert!(err.contains("`9O`"), "{err}");
    }

    #[test]
    fn missing_header() {
        let err = EnergyParams::parse("# stack\n1 2 3\n").unwrap_err();
        assert!(err.contains("header"), "{err}");
    }
}
