//! The verifier: a pure function.

/// `target[i]` is the target model's greedy token after the context plus `draft[..i]`
/// (so `target.len() == draft.len() + 1`). Returns how many draft tokens are accepted and the
/// token that follows them — exactly what greedy decoding would have produced.
pub fn verify(draft: &[i32], target: &[i32]) -> (usize, i32) {
    assert_eq!(
        target.len(),
        draft.len() + 1,
        "one target token per drafted position, plus one"
    );
    let accepted = draft.iter().zip(target).take_while(|(d, t)| d == t).count();
    (accepted, target[accepted])
}

#[cfg(test)]
mod tests {
    use super::verify;

    #[test]
    fn accepts_the_agreeing_prefix() {
        assert_eq!(verify(&[5, 6, 7], &[5, 6, 9, 1]), (2, 9));
        assert_eq!(verify(&[5, 6, 7], &[5, 6, 7, 8]), (3, 8));
        assert_eq!(verify(&[5], &[4, 0]), (0, 4));
        assert_eq!(verify(&[], &[3]), (0, 3));
    }

    #[test]
    fn greedy_equivalence_on_random_sequences() {
        // Simulate a "target" that is a fixed function of the context, and random drafts:
        // the tokens produced with verification equal those produced one by one.
        let target_next = |ctx: &[i32]| -> i32 {
            ctx.iter()
                .fold(7i32, |a, t| a.wrapping_mul(31).wrapping_add(*t))
                .rem_euclid(5)
        };
        let mut seed = 1u64;
        let mut rnd = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            ((seed >> 33) % 5) as i32
        };
        for _ in 0..200 {
            let mut plain = vec![1];
            for _ in 0..30 {
                let t = target_next(&plain);
                plain.push(t);
            }
            let mut spec = vec![1];
            while spec.len() < plain.len() {
                let k = (rnd() as usize) % 4;
                // Half of the time draft the right tokens, else random ones.
                let mut draft = Vec::new();
                let mut ctx = spec.clone();
                for _ in 0..k {
                    let d = if rnd() % 2 == 0 {
                        target_next(&ctx)
                    } else {
                        rnd()
                    };
                    draft.push(d);
                    ctx.push(d);
                }
                let mut targets = vec![target_next(&spec)];
                let mut ctx = spec.clone();
                for d in &draft {
                    ctx.push(*d);
                    targets.push(target_next(&ctx));
                }
                let (n, next) = verify(&draft, &targets);
                spec.extend_from_slice(&draft[..n]);
                spec.push(next);
            }
            spec.truncate(plain.len());
            assert_eq!(spec, plain);
        }
    }
}
