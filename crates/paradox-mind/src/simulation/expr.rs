//! User dynamics written as an expression, compiled once into a short program over whole
//! rows: `x + dt * 0.5 * (c - x)`, `x * (1 - 0.01 * dt) + 0.1 * sin(t + i)`.
//!
//! The expression gives each component's new value. Names:
//!
//! | name | value |
//! |---|---|
//! | `x` | the component's current value (a vector over the row) |
//! | `i` | the component's index, `0..dim` |
//! | `dt`, `t`, `step` | time step, time (`step · dt`), step number |
//! | `row` | the row's index in the buffer |
//! | `norm`, `mean` | the row's L2 norm and mean (before this step) |
//! | user scalars and vectors | bound at compile time (vectors have the row's length) |
//!
//! Operators `+ - * / ^` (right-associative power) and unary minus; functions `sin cos
//! tan exp ln sqrt abs tanh sigmoid floor` (one argument), `min max pow` (two), `clamp`
//! (three). Numbers like `0.5`, `1e-3`.
//!
//! Every operation of the program runs over a whole row (`dim` values) in one tight loop
//! with the operator chosen before the loop, so there is no per-element interpretation;
//! sub-expressions over scalars only (`dt * 0.5`) are computed once per row.

use crate::error::{MindError, Result};

/// Scalar slots every program has, in this order.
const BUILTIN_SCALARS: [&str; 6] = ["dt", "t", "step", "row", "norm", "mean"];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Operand {
    Const(f32),
    /// Per-row scalar slot.
    Scalar(usize),
    /// Vector register.
    Vector(usize),
    /// The row.
    X,
    /// `0..dim`.
    Index,
    /// A user vector.
    Named(usize),
}

impl Operand {
    fn is_vector(self) -> bool {
        matches!(
            self,
            Operand::Vector(_) | Operand::X | Operand::Index | Operand::Named(_)
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Func {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Min,
    Max,
    Neg,
    Sin,
    Cos,
    Tan,
    Exp,
    Ln,
    Sqrt,
    Abs,
    Tanh,
    Sigmoid,
    Floor,
}

impl Func {
    fn unary(name: &str) -> Option<Func> {
        Some(match name {
            "sin" => Func::Sin,
            "cos" => Func::Cos,
            "tan" => Func::Tan,
            "exp" => Func::Exp,
            "ln" => Func::Ln,
            "sqrt" => Func::Sqrt,
            "abs" => Func::Abs,
            "tanh" => Func::Tanh,
            "sigmoid" => Func::Sigmoid,
            "floor" => Func::Floor,
            _ => return None,
        })
    }

    #[inline(always)]
    fn one(self, a: f32) -> f32 {
        match self {
            Func::Neg => -a,
            Func::Sin => a.sin(),
            Func::Cos => a.cos(),
            Func::Tan => a.tan(),
            Func::Exp => a.exp(),
            Func::Ln => a.ln(),
            Func::Sqrt => a.sqrt(),
            Func::Abs => a.abs(),
            Func::Tanh => a.tanh(),
            Func::Sigmoid => 1.0 / (1.0 + (-a).exp()),
            Func::Floor => a.floor(),
            _ => a,
        }
    }

    #[inline(always)]
    fn two(self, a: f32, b: f32) -> f32 {
        match self {
            Func::Add => a + b,
            Func::Sub => a - b,
            Func::Mul => a * b,
            Func::Div => a / b,
            Func::Pow => a.powf(b),
            Func::Min => a.min(b),
            Func::Max => a.max(b),
            _ => a,
        }
    }
}

/// One instruction: `dst = f(a)` or `dst = f(a, b)`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Op {
    func: Func,
    a: Operand,
    b: Option<Operand>,
    dst: Operand,
}

/// A compiled expression dynamic (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct Expression {
    source: String,
    dim: usize,
    ops: Vec<Op>,
    result: Operand,
    scalars: Vec<f32>,
    vectors: Vec<Vec<f32>>,
    index: Vec<f32>,
    scalar_slots: usize,
    vector_regs: usize,
    /// Whether the program reads `norm` or `mean` (computed per row only then).
    needs_stats: bool,
}

/// Per-thread working memory of [`Expression::apply`].
#[derive(Debug, Default)]
pub(super) struct Scratch {
    scalars: Vec<f32>,
    vectors: Vec<Vec<f32>>,
}

enum Token {
    Num(f32),
    Ident(String),
    Sym(char),
}

fn tokens(source: &str) -> Result<Vec<Token>> {
    let bad = |m: String| MindError::invalid("expression", m);
    let chars: Vec<char> = source.chars().collect();
    let mut out = Vec::new();
    let mut k = 0;
    while k < chars.len() {
        let c = chars[k];
        if c.is_whitespace() {
            k += 1;
        } else if c.is_ascii_digit() || c == '.' {
            let start = k;
            while k < chars.len()
                && (chars[k].is_ascii_digit()
                    || chars[k] == '.'
                    || ((chars[k] == 'e' || chars[k] == 'E') && k > start)
                    || ((chars[k] == '-' || chars[k] == '+') && matches!(chars[k - 1], 'e' | 'E')))
            {
                k += 1;
            }
            let text: String = chars[start..k].iter().collect();
            let value = text
                .parse::<f32>()
                .map_err(|_| bad(format!("`{text}` is not a number")))?;
            out.push(Token::Num(value));
        } else if c.is_alphabetic() || c == '_' {
            let start = k;
            while k < chars.len() && (chars[k].is_alphanumeric() || chars[k] == '_') {
                k += 1;
            }
            out.push(Token::Ident(chars[start..k].iter().collect()));
        } else if "+-*/^(),".contains(c) {
            out.push(Token::Sym(c));
            k += 1;
        } else {
            return Err(bad(format!("unexpected character `{c}` at {k}")));
        }
    }
    Ok(out)
}

/// Deepest nesting of operators, signs and parentheses an expression may have: the
/// parser recurses once per level, so an unbounded depth could overflow the stack.
const MAX_DEPTH: usize = 256;

struct Compiler<'a> {
    tokens: Vec<Token>,
    at: usize,
    depth: usize,
    scalar_names: Vec<&'a str>,
    vector_names: Vec<&'a str>,
    ops: Vec<Op>,
    scalar_slots: usize,
    vector_regs: usize,
}

impl Compiler<'_> {
    fn bad(&self, message: impl Into<String>) -> MindError {
        MindError::invalid("expression", message)
    }

    fn peek_sym(&self) -> Option<char> {
        match self.tokens.get(self.at) {
            Some(Token::Sym(c)) => Some(*c),
            _ => None,
        }
    }

    fn expect(&mut self, c: char) -> Result<()> {
        if self.peek_sym() == Some(c) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.bad(format!("expected `{c}`")))
        }
    }

    /// Emits `func` over the operands, folding constants.
    fn emit(&mut self, func: Func, a: Operand, b: Option<Operand>) -> Operand {
        if let (Operand::Const(x), None) = (a, b) {
            return Operand::Const(func.one(x));
        }
        if let (Operand::Const(x), Some(Operand::Const(y))) = (a, b) {
            return Operand::Const(func.two(x, y));
        }
        let vector = a.is_vector() || b.is_some_and(Operand::is_vector);
        let dst = if vector {
            self.vector_regs += 1;
            Operand::Vector(self.vector_regs - 1)
        } else {
            self.scalar_slots += 1;
            Operand::Scalar(self.scalar_slots - 1)
        };
        self.ops.push(Op { func, a, b, dst });
        dst
    }

    fn expr(&mut self) -> Result<Operand> {
        let mut left = self.term()?;
        while let Some(c @ ('+' | '-')) = self.peek_sym() {
            self.at += 1;
            let right = self.term()?;
            let func = if c == '+' { Func::Add } else { Func::Sub };
            left = self.emit(func, left, Some(right));
        }
        Ok(left)
    }

    fn term(&mut self) -> Result<Operand> {
        let mut left = self.unary()?;
        while let Some(c @ ('*' | '/')) = self.peek_sym() {
            self.at += 1;
            let right = self.unary()?;
            let func = if c == '*' { Func::Mul } else { Func::Div };
            left = self.emit(func, left, Some(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Operand> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.bad(format!(
                "nested more than {MAX_DEPTH} levels deep (signs, powers and parentheses)"
            )));
        }
        let operand = self.signed();
        self.depth -= 1;
        operand
    }

    fn signed(&mut self) -> Result<Operand> {
        if self.peek_sym() == Some('-') {
            self.at += 1;
            let a = self.unary()?;
            return Ok(self.emit(Func::Neg, a, None));
        }
        if self.peek_sym() == Some('+') {
            self.at += 1;
            return self.unary();
        }
        let base = self.atom()?;
        if self.peek_sym() == Some('^') {
            self.at += 1;
            let exponent = self.unary()?;
            return Ok(self.emit(Func::Pow, base, Some(exponent)));
        }
        Ok(base)
    }

    fn args(&mut self) -> Result<Vec<Operand>> {
        self.expect('(')?;
        let mut args = vec![self.expr()?];
        while self.peek_sym() == Some(',') {
            self.at += 1;
            args.push(self.expr()?);
        }
        self.expect(')')?;
        Ok(args)
    }

    fn atom(&mut self) -> Result<Operand> {
        let token = self.tokens.get(self.at);
        self.at += 1;
        match token {
            Some(Token::Num(v)) => Ok(Operand::Const(*v)),
            Some(Token::Sym('(')) => {
                let inner = self.expr()?;
                self.expect(')')?;
                Ok(inner)
            }
            Some(Token::Ident(name)) => {
                let name = name.clone();
                if self.peek_sym() == Some('(') {
                    let args = self.args()?;
                    return self.call(&name, args);
                }
                match name.as_str() {
                    "x" => Ok(Operand::X),
                    "i" => Ok(Operand::Index),
                    "pi" => Ok(Operand::Const(std::f32::consts::PI)),
                    _ => {
                        if let Some(slot) = self.scalar_names.iter().position(|n| *n == name) {
                            Ok(Operand::Scalar(slot))
                        } else if let Some(v) = self.vector_names.iter().position(|n| *n == name) {
                            Ok(Operand::Named(v))
                        } else {
                            Err(self.bad(format!("unknown name `{name}`")))
                        }
                    }
                }
            }
            Some(Token::Sym(c)) => Err(self.bad(format!("unexpected `{c}`"))),
            None => Err(self.bad("unexpected end of expression")),
        }
    }

    fn call(&mut self, name: &str, args: Vec<Operand>) -> Result<Operand> {
        let arity = |n: usize| -> Result<()> {
            if args.len() == n {
                Ok(())
            } else {
                Err(MindError::invalid(
                    "expression",
                    format!("`{name}` takes {n} argument(s), got {}", args.len()),
                ))
            }
        };
        if let Some(func) = Func::unary(name) {
            arity(1)?;
            return Ok(self.emit(func, args[0], None));
        }
        match name {
            "min" | "max" | "pow" => {
                arity(2)?;
                let func = match name {
                    "min" => Func::Min,
                    "max" => Func::Max,
                    _ => Func::Pow,
                };
                Ok(self.emit(func, args[0], Some(args[1])))
            }
            "clamp" => {
                arity(3)?;
                let low = self.emit(Func::Max, args[0], Some(args[1]));
                Ok(self.emit(Func::Min, low, Some(args[2])))
            }
            _ => Err(self.bad(format!("unknown function `{name}`"))),
        }
    }
}

/// A row-length slice or a broadcast scalar.
enum Src<'a> {
    Row(&'a [f32]),
    All(f32),
}

#[inline(always)]
fn run_two(dst: &mut [f32], a: &Src<'_>, b: &Src<'_>, f: impl Fn(f32, f32) -> f32) {
    match (a, b) {
        (Src::Row(a), Src::Row(b)) => {
            for ((d, &x), &y) in dst.iter_mut().zip(*a).zip(*b) {
                *d = f(x, y);
            }
        }
        (Src::Row(a), Src::All(y)) => {
            for (d, &x) in dst.iter_mut().zip(*a) {
                *d = f(x, *y);
            }
        }
        (Src::All(x), Src::Row(b)) => {
            for (d, &y) in dst.iter_mut().zip(*b) {
                *d = f(*x, y);
            }
        }
        (Src::All(x), Src::All(y)) => dst.fill(f(*x, *y)),
    }
}

#[inline(always)]
fn run_one(dst: &mut [f32], a: &Src<'_>, f: impl Fn(f32) -> f32) {
    match a {
        Src::Row(a) => {
            for (d, &x) in dst.iter_mut().zip(*a) {
                *d = f(x);
            }
        }
        Src::All(x) => dst.fill(f(*x)),
    }
}

impl Expression {
    /// Compiles `source` for rows of `dim` values, binding user `scalars` and `vectors`
    /// (each `dim` long) by name. Errors name the problem (unknown name, bad syntax,
    /// wrong arity, a vector of the wrong length, a name bound twice).
    pub fn compile(
        source: &str,
        dim: usize,
        scalars: &[(&str, f32)],
        vectors: &[(&str, Vec<f32>)],
    ) -> Result<Expression> {
        let mut names: Vec<&str> = BUILTIN_SCALARS.to_vec();
        let user = scalars
            .iter()
            .map(|(n, _)| *n)
            .chain(vectors.iter().map(|(n, _)| *n));
        for name in user {
            if names.contains(&name) || matches!(name, "x" | "i" | "pi") {
                return Err(MindError::invalid(
                    "expression",
                    format!("the name `{name}` is bound twice or reserved"),
                ));
            }
            names.push(name);
        }
        for (name, v) in vectors {
            if v.len() != dim {
                return Err(MindError::Dimension {
                    context: "expression vector",
                    expected: dim,
                    got: v.len(),
                });
            }
            if !v.iter().all(|x| x.is_finite()) || name.is_empty() {
                return Err(MindError::invalid(
                    "expression",
                    format!("vector `{name}` must be finite"),
                ));
            }
        }
        let scalar_names: Vec<&str> = BUILTIN_SCALARS
            .iter()
            .copied()
            .chain(scalars.iter().map(|(n, _)| *n))
            .collect();
        let mut compiler = Compiler {
            tokens: tokens(source)?,
            at: 0,
            depth: 0,
            scalar_slots: scalar_names.len(),
            scalar_names,
            vector_names: vectors.iter().map(|(n, _)| *n).collect(),
            ops: Vec::new(),
            vector_regs: 0,
        };
        if compiler.tokens.is_empty() {
            return Err(MindError::invalid("expression", "the expression is empty"));
        }
        let result = compiler.expr()?;
        if compiler.at != compiler.tokens.len() {
            return Err(MindError::invalid(
                "expression",
                "unexpected text after the expression",
            ));
        }
        // Slots 4 and 5 are `norm` and `mean` (see BUILTIN_SCALARS).
        let reads_stats = |o: Operand| matches!(o, Operand::Scalar(4 | 5));
        let needs_stats = reads_stats(result)
            || compiler
                .ops
                .iter()
                .any(|op| reads_stats(op.a) || op.b.is_some_and(reads_stats));
        Ok(Expression {
            needs_stats,
            source: source.to_string(),
            dim,
            ops: compiler.ops,
            result,
            scalars: scalars.iter().map(|(_, v)| *v).collect(),
            vectors: vectors.iter().map(|(_, v)| v.clone()).collect(),
            index: (0..dim).map(|k| k as f32).collect(),
            scalar_slots: compiler.scalar_slots,
            vector_regs: compiler.vector_regs,
        })
    }

    /// The source it was compiled from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Instructions per row (after constant folding).
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether the program is a constant or a plain name (no instructions).
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Rows this expression was compiled for have this many values.
    pub fn dimension(&self) -> usize {
        self.dim
    }

    /// Replaces `x` (one row) by the expression's value.
    pub(super) fn apply(
        &self,
        x: &mut [f32],
        row: usize,
        step: u64,
        dt: f32,
        scratch: &mut Scratch,
    ) {
        let dim = x.len();
        scratch.scalars.clear();
        let (norm, mean) = if self.needs_stats && dim > 0 {
            (
                paradox_kernels::dot(x, x).sqrt(),
                x.iter().sum::<f32>() / dim as f32,
            )
        } else {
            (0.0, 0.0)
        };
        scratch.scalars.extend_from_slice(&[
            dt,
            step as f32 * dt,
            step as f32,
            row as f32,
            norm,
            mean,
        ]);
        scratch.scalars.extend_from_slice(&self.scalars);
        scratch.scalars.resize(self.scalar_slots, 0.0);
        if scratch.vectors.len() < self.vector_regs {
            scratch.vectors.resize_with(self.vector_regs, Vec::new);
        }
        for reg in scratch.vectors.iter_mut().take(self.vector_regs) {
            reg.resize(dim, 0.0);
        }
        for op in &self.ops {
            match op.dst {
                Operand::Scalar(slot) => {
                    let get = |o: Operand| match o {
                        Operand::Const(v) => v,
                        Operand::Scalar(s) => scratch.scalars[s],
                        _ => 0.0,
                    };
                    let a = get(op.a);
                    let value = match op.b {
                        Some(b) => op.func.two(a, get(b)),
                        None => op.func.one(a),
                    };
                    scratch.scalars[slot] = value;
                }
                Operand::Vector(reg) => {
                    let mut dst = std::mem::take(&mut scratch.vectors[reg]);
                    {
                        let src = |o: Operand| match o {
                            Operand::Const(v) => Src::All(v),
                            Operand::Scalar(s) => Src::All(scratch.scalars[s]),
                            Operand::Vector(r) => Src::Row(&scratch.vectors[r]),
                            Operand::X => Src::Row(x),
                            Operand::Index => Src::Row(&self.index),
                            Operand::Named(v) => Src::Row(&self.vectors[v]),
                        };
                        let a = src(op.a);
                        match op.b {
                            Some(b) => {
                                let b = src(b);
                                match op.func {
                                    Func::Add => run_two(&mut dst, &a, &b, |p, q| p + q),
                                    Func::Sub => run_two(&mut dst, &a, &b, |p, q| p - q),
                                    Func::Mul => run_two(&mut dst, &a, &b, |p, q| p * q),
                                    Func::Div => run_two(&mut dst, &a, &b, |p, q| p / q),
                                    Func::Min => run_two(&mut dst, &a, &b, f32::min),
                                    Func::Max => run_two(&mut dst, &a, &b, f32::max),
                                    other => run_two(&mut dst, &a, &b, |p, q| other.two(p, q)),
                                }
                            }
                            None => match op.func {
                                Func::Neg => run_one(&mut dst, &a, |p| -p),
                                Func::Abs => run_one(&mut dst, &a, f32::abs),
                                other => run_one(&mut dst, &a, |p| other.one(p)),
                            },
                        }
                    }
                    scratch.vectors[reg] = dst;
                }
                _ => {}
            }
        }
        match self.result {
            Operand::Const(v) => x.fill(v),
            Operand::Scalar(s) => x.fill(scratch.scalars[s]),
            Operand::Vector(r) => x.copy_from_slice(&scratch.vectors[r]),
            Operand::X => {}
            Operand::Index => x.copy_from_slice(&self.index),
            Operand::Named(v) => x.copy_from_slice(&self.vectors[v]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(source: &str, x: &[f32], vectors: &[(&str, Vec<f32>)]) -> Vec<f32> {
        let e = Expression::compile(source, x.len(), &[("k", 2.0)], vectors).unwrap();
        let mut row = x.to_vec();
        e.apply(&mut row, 3, 4, 0.5, &mut Scratch::default());
        row
    }

    #[test]
    fn expressions_compute_what_they_say() {
        let x = [1.0, -2.0, 3.0];
        let c = ("c", vec![0.0, 0.0, 1.0]);
        assert_eq!(
            run("x + dt * (c - x)", &x, std::slice::from_ref(&c)),
            vec![0.5, -1.0, 2.0]
        );
        assert_eq!(run("-x * k", &x, &[]), vec![-2.0, 4.0, -6.0]);
        assert_eq!(run("i + step + row", &x, &[]), vec![7.0, 8.0, 9.0]);
        assert_eq!(run("t", &x, &[]), vec![2.0, 2.0, 2.0]);
        assert_eq!(run("2 ^ 3 ^ 2", &x, &[]), vec![512.0; 3]);
        assert_eq!(run("clamp(x, -1, 1)", &x, &[]), vec![1.0, -1.0, 1.0]);
        assert_eq!(run("max(abs(x), 2.5)", &x, &[]), vec![2.5, 2.5, 3.0]);
        let norm = (14.0f32).sqrt();
        let got = run("x / norm", &x, &[]);
        assert!(got.iter().zip(x).all(|(g, v)| (g - v / norm).abs() < 1e-6));
        let got = run("x - mean", &x, &[]);
        let want = [1.0 - 2.0 / 3.0, -2.0 - 2.0 / 3.0, 3.0 - 2.0 / 3.0];
        assert!(
            got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-6),
            "{got:?}"
        );
        let got = run(
            "sigmoid(0) + sin(pi / 2) + exp(0) + ln(1) + sqrt(4) + tanh(0)",
            &x,
            &[],
        );
        assert!(got.iter().all(|v| (v - 4.5).abs() < 1e-6), "{got:?}");
        // Scalar-only parts are folded or computed once per row.
        let e = Expression::compile("x * (2 * 3 + 1)", 3, &[], &[]).unwrap();
        assert_eq!(e.len(), 1);
    }

    #[test]
    fn bad_expressions_name_the_problem() {
        let cases = [
            ("x +", "end of expression"),
            ("y * 2", "unknown name `y`"),
            ("foo(x)", "unknown function `foo`"),
            ("min(x)", "takes 2 argument"),
            ("x $ 2", "unexpected character"),
            ("(x", "expected `)`"),
            ("x x", "after the expression"),
            ("", "empty"),
            ("1.2.3", "not a number"),
        ];
        for (source, needle) in cases {
            let error = Expression::compile(source, 3, &[], &[])
                .unwrap_err()
                .to_string();
            assert!(error.contains(needle), "{source}: {error}");
        }
        let error = Expression::compile("x", 3, &[], &[("c", vec![1.0])])
            .unwrap_err()
            .to_string();
        assert!(error.contains("dimension"), "{error}");
        let error = Expression::compile("x", 3, &[("dt", 1.0)], &[])
            .unwrap_err()
            .to_string();
        assert!(error.contains("bound twice"), "{error}");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = format!("{}x{}", "(".repeat(100_000), ")".repeat(100_000));
        let error = Expression::compile(&deep, 2, &[], &[])
            .unwrap_err()
            .to_string();
        assert!(error.contains("nested more than"), "{error}");
        let signs = format!("{}x", "-".repeat(1_000_000));
        assert!(Expression::compile(&signs, 2, &[], &[]).is_err());
        let fine = format!("{}x{}", "(".repeat(100), ")".repeat(100));
        assert!(Expression::compile(&fine, 2, &[], &[]).is_ok());
    }
}
