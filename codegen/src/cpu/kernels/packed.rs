//! [`PackedMatmul`]: a matmul with a constant `B` (a Linear/Gemm weight), its
//! bias and activation fixed once.
//!
//! `B` is stored in column panels of [`PANEL`] columns, each panel k×PANEL
//! row-major (the last one narrower). The tiled kernel reads a panel with
//! leading dimension PANEL, so for `m == 1` (a GEMV, whose 1×128 tile spans a
//! whole panel) the weights stream contiguously; for larger `m` the 12×32 tiles
//! read 128-byte rows of a panel. The panels are independent GEMMs to the
//! tiled driver, so threads split them.

use super::epilogue::{Activation, Bias, Epi};
use super::matmul::{run_kn, MatmulDesc};
use super::par::{split, tasks_for};
use super::tile::{self, Dims, Gemm, Offsets};
use super::{invalid, need};
use crate::cpu::pages::Paged;
use crate::CodegenError;

/// Columns per weight panel (one 1×128 GEMV tile).
const PANEL: usize = 128;

/// `C = A·B (+ bias) (+ residual)`, then the activation, for a fixed k×n `B`.
#[derive(Debug, Clone)]
pub struct PackedMatmul {
    k: usize,
    n: usize,
    b: Paged,
    bias: Option<Vec<f32>>,
    activation: Activation,
}

impl PackedMatmul {
    /// Packs `b` (k×n row-major, or n×k when `b_transposed`) and the optional
    /// bias (`n` elements, one per output column).
    pub fn new(
        k: usize,
        n: usize,
        b: &[f32],
        b_transposed: bool,
        bias: Option<&[f32]>,
        activation: Activation,
    ) -> Result<PackedMatmul, CodegenError> {
        let kn = k
            .checked_mul(n)
            .ok_or(CodegenError::Overflow { operand: "b" })?;
        need("b", b.len(), kn)?;
        if let Some(bias) = bias {
            if bias.len() != n {
                return Err(invalid(
                    "PackedMatmul",
                    format!("bias has {} elements, n is {}", bias.len(), n),
                ));
            }
        }
        let mut panels = vec![0f32; kn];
        for j0 in (0..n).step_by(PANEL) {
            let w = PANEL.min(n - j0);
            let panel = &mut panels[j0 * k..][..k * w];
            for p in 0..k {
                for j in 0..w {
                    let src = if b_transposed {
                        (j0 + j) * k + p
                    } else {
                        p * n + j0 + j
                    };
                    panel[p * w + j] = b[src];
                }
            }
        }
        Ok(PackedMatmul {
            k,
            n,
            b: Paged::copy_of(&panels),
            bias: bias.map(<[f32]>::to_vec),
            activation,
        })
    }

    /// Inner dimension.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Output columns.
    pub fn n(&self) -> usize {
        self.n
    }

    /// `c` (m×n) = epilogue(`a` (m×k) · B), `residual` m×n when given.
    pub fn run(
        &self,
        a: &[f32],
        m: usize,
        residual: Option<&[f32]>,
        c: &mut [f32],
        threads: usize,
    ) -> Result<(), CodegenError> {
        if threads == 0 {
            return Err(CodegenError::ZeroThreads);
        }
        let over = |operand| CodegenError::Overflow { operand };
        let mk = m.checked_mul(self.k).ok_or(over("a"))?;
        let mn = m
            .checked_mul(self.n)
            .filter(|&x| x <= isize::MAX as usize / 4)
            .ok_or(over("c"))?;
        need("a", a.len(), mk)?;
        need("c", c.len(), mn)?;
        if let Some(r) = residual {
            need("residual", r.len(), mn)?;
        }
        let epi = Epi {
            bias: self
                .bias
                .as_ref()
                .map_or(Bias::None, |b| Bias::Col(b.as_ptr())),
            residual: residual.map_or(std::ptr::null(), |r| r.as_ptr()),
            act: self.activation,
        };
        if m == 0 || self.n == 0 {
            return Ok(());
        }
        if self.k == 0 {
            let d = MatmulDesc {
                batch: 1,
                m,
                n: self.n,
                k: 0,
                ..MatmulDesc::default()
            };
            // SAFETY: lengths checked above; k == 0 reads neither a nor b.
            unsafe { run_kn(&d, a.as_ptr(), self.b.as_ptr(), c, epi, threads) };
            return Ok(());
        }
        let (k, n) = (self.k, self.n);
        let base = Gemm {
            a: a.as_ptr(),
            lda: k,
            panel: 0,
            b: self.b.as_ptr(),
            ldb: PANEL,
            b_rows: std::ptr::null(),
            c: c.as_mut_ptr(),
            ldc: n,
            epi,
        };
        if m == 1 {
            // SAFETY: lengths checked above.
            unsafe { self.gemv(base, threads) };
            return Ok(());
        }
        let full = n / PANEL;
        let offs = |p: usize| Offsets {
            a: 0,
            b: p * k * PANEL,
            c: p * PANEL,
            row: 0,
            col: p * PANEL,
        };
        // SAFETY: lengths checked above; panel p holds k×PANEL weights (the last
        // one k×rest) and covers output columns p·PANEL.. of every row.
        unsafe {
            tile::run(full, Dims { m, n: PANEL, k }, base, offs, threads);
            let rest = n - full * PANEL;
            if rest > 0 {
                let last = Gemm {
                    ldb: rest,
                    ..base.at(offs(full))
                };
                tile::run(
                    1,
                    Dims { m, n: rest, k },
                    last,
                    |_| Offsets::default(),
                    threads,
                );
            }
        }
        Ok(())
    }

    /// `m == 1`: threads take equal ranges of 16-column units (a whole-panel
    /// split leaves 7 panels + a tail of a 1000-wide layer unbalanced on 2
    /// threads); each range runs as 1×≤128 tiles within the panels it covers.
    ///
    /// # Safety
    /// `base` must address a 1×k `a`, this matmul's panels and a 1×n `c`.
    unsafe fn gemv(&self, base: Gemm, threads: usize) {
        let (k, n) = (self.k, self.n);
        let units = n.div_ceil(16);
        let tasks = tasks_for(threads, 8 * n * k);
        split(units, tasks, |range| {
            let (j0, j1) = (range.start * 16, (range.end * 16).min(n));
            let mut j = j0;
            while j < j1 {
                let p = j / PANEL;
                let end = ((p + 1) * PANEL).min(j1);
                let width = PANEL.min(n - p * PANEL);
                let g = Gemm {
                    ldb: width,
                    ..base.at(Offsets {
                        a: 0,
                        b: p * k * PANEL + (j - p * PANEL),
                        c: j,
                        row: 0,
                        col: j,
                    })
                };
                let d = Dims {
                    m: 1,
                    n: end - j,
                    k,
                };
                // SAFETY: columns j..end of panel p exist, per the contract.
                unsafe { tile::run(1, d, g, |_| Offsets::default(), 1) };
                j = end;
            }
        });
    }
}
