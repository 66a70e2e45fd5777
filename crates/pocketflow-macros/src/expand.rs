//! The expansion: the function as written, its result named and given run
//! options through `::pocketflow::TraceFlow`.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{ToTokens, quote, quote_spanned};
use syn::ext::IdentExt as _;
use syn::spanned::Spanned as _;
use syn::{Ident, ItemFn, LitStr, ReturnType};

use crate::args::{Args, parse_args};

/// The attribute's output: the expansion, or the error as `compile_error!`
/// followed by the item unchanged (so one mistake in the attribute doesn't
/// also make every caller of the function fail).
pub(crate) fn trace_flow(args: TokenStream, item: TokenStream) -> TokenStream {
    match expand(args, item.clone()) {
        Ok(expanded) => expanded,
        Err(err) => {
            let err = err.to_compile_error();
            quote!(#err #item)
        }
    }
}

/// Parses the arguments and the function and builds the expansion.
///
/// # Errors
/// The first problem found, spanned on its tokens.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let args = parse_args(args)?;
    let func: ItemFn = syn::parse2(item.clone()).map_err(|_| {
        syn::Error::new_spanned(&item, "`#[trace_flow]` goes on a function that builds and returns a flow")
    })?;
    expand_fn(args, func)
}

fn expand_fn(mut args: Args, func: ItemFn) -> syn::Result<TokenStream> {
    let ItemFn { attrs, vis, sig, block } = func;
    if let Some(constness) = &sig.constness {
        return Err(syn::Error::new_spanned(constness, "`#[trace_flow]` can't go on a `const fn`"));
    }
    let ReturnType::Type(_, ret) = &sig.output else {
        return Err(syn::Error::new(
            sig.paren_token.span.join(),
            "`#[trace_flow]` goes on a function that returns a flow; add its return type, like `-> Flow`",
        ));
    };
    let name = match args.flow_name.take() {
        Some(name) => name,
        None => {
            let ident = sig.ident.unraw().to_string();
            let name = upper_camel(&ident);
            if name.is_empty() {
                return Err(syn::Error::new_spanned(
                    &sig.ident,
                    format!("no flow name can be made from `{ident}`; give one with `flow_name = \"...\"`"),
                ));
            }
            LitStr::new(&name, sig.ident.span())
        }
    };

    // The body runs in a closure (an async block for an `async fn`) so that
    // an early `return` still goes through the naming below. The local is
    // hygienic: the body can't see it and it can't shadow anything.
    let flow = Ident::new("__pocketflow_flow", Span::mixed_site());
    let ret = &**ret;
    // `impl Trait` can't be written in a closure's or a `let`'s type, so
    // such return types are left to inference.
    let nameable = !mentions_impl(ret.to_token_stream());
    let annotation = nameable.then(|| quote!(: #ret));
    let produce = if sig.asyncness.is_some() {
        quote!(async move #block.await)
    } else if nameable {
        quote!((move || -> #ret #block)())
    } else {
        quote!((move || #block)())
    };

    // Spanned on the return type: a type that isn't a flow is reported
    // there ("the trait `TraceFlow` is not implemented for …").
    let at = ret.span();
    let named = quote_spanned!(at=> ::pocketflow::TraceFlow::with_name(#flow, #name));
    let with_options = args.has_run_options().then(|| {
        let session = args.session_id.iter();
        let user = args.user_id.iter();
        let tags = &args.tags;
        let keys = args.metadata.iter().map(|(k, _)| k);
        let values = args.metadata.iter().map(|(_, v)| v);
        let options = Ident::new("__pocketflow_options", Span::mixed_site());
        quote_spanned! {at=>
            let #options = ::pocketflow::RunOptions::new()
                #(.session_id(#session))*
                #(.user_id(#user))*
                #(.tag(#tags))*
                #(.metadata(#keys, #values))*
                .over(::pocketflow::TraceFlow::run_options(&#flow));
            let #flow = ::pocketflow::TraceFlow::with_run_options(#flow, #options);
        }
    });

    Ok(quote! {
        #(#attrs)*
        #vis #sig {
            #[allow(clippy::redundant_closure_call)]
            let #flow #annotation = #produce;
            let #flow = #named;
            #with_options
            #flow
        }
    })
}

/// `data_processing_flow` → `DataProcessingFlow`: each `_`-separated part
/// with its first letter upper-cased, the rest kept, the `_`s dropped (the
/// Python decorator's default is the class name, which is UpperCamelCase).
pub(crate) fn upper_camel(name: &str) -> String {
    name.split('_')
        .flat_map(|part| {
            let mut chars = part.chars();
            chars.next().into_iter().flat_map(char::to_uppercase).chain(chars)
        })
        .collect()
}

/// Whether the tokens contain the `impl` keyword at any depth.
fn mentions_impl(tokens: TokenStream) -> bool {
    tokens.into_iter().any(|tree| match tree {
        TokenTree::Ident(ident) => ident == "impl",
        TokenTree::Group(group) => mentions_impl(group.stream()),
        TokenTree::Punct(_) | TokenTree::Literal(_) => false,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn expand_str(args: &str, item: &str) -> syn::Result<String> {
        expand(args.parse().unwrap(), item.parse().unwrap()).map(|tokens| tokens.to_string())
    }

    /// The error's message and the source text its span covers.
    fn error(args: &str, item: &str) -> (String, String) {
        let Err(err) = expand(args.parse().unwrap(), item.parse().unwrap()) else { panic!("`{item}` expanded") };
        (err.to_string(), err.span().source_text().unwrap_or_default())
    }

    /// The expansion with whitespace removed, for `contains` checks.
    fn compact(tokens: &str) -> String {
        tokens.split_whitespace().collect()
    }

    #[test]
    fn upper_camel_case() {
        let cases = [
            ("data_processing_flow", "DataProcessingFlow"),
            ("flow", "Flow"),
            ("flow_v2", "FlowV2"),
            ("_private__flow_", "PrivateFlow"),
            ("already_Camel", "AlreadyCamel"),
            ("DataFlow", "DataFlow"),
            ("__", ""),
        ];
        for (snake, camel) in cases {
            assert_eq!(upper_camel(snake), camel, "{snake}");
        }
    }

    #[test]
    fn names_then_returns() {
        let out = compact(&expand_str("", "pub fn data_flow() -> Flow { Flow::new() }").unwrap());
        assert!(out.starts_with("pubfndata_flow()->Flow{"), "{out}");
        assert!(out.contains("(move||->Flow{Flow::new()})()"), "{out}");
        assert!(out.contains("::pocketflow::TraceFlow::with_name(__pocketflow_flow,\"DataFlow\")"), "{out}");
        assert!(!out.contains("RunOptions"), "no options given: {out}");
        assert!(out.ends_with("__pocketflow_flow}"), "{out}");
    }

    #[test]
    fn options_lie_over_the_flows_own() {
        let out = compact(
            &expand_str(
                r#"flow_name = "X", session_id = "s", user_id = "u", tags = ["a"], metadata(k = -1)"#,
                "fn f() -> Flow { Flow::new() }",
            )
            .unwrap(),
        );
        assert!(out.contains("with_name(__pocketflow_flow,\"X\")"), "{out}");
        assert!(
            out.contains(
                "::pocketflow::RunOptions::new().session_id(\"s\").user_id(\"u\").tag(\"a\").metadata(\"k\",-1i64)\
                 .over(::pocketflow::TraceFlow::run_options(&__pocketflow_flow));"
            ),
            "{out}"
        );
        assert!(out.contains("::pocketflow::TraceFlow::with_run_options(__pocketflow_flow,__pocketflow_options)"));
    }

    #[test]
    fn async_bodies_are_awaited() {
        let out = compact(&expand_str("", "async fn f() -> AsyncFlow { AsyncFlow::new() }").unwrap());
        assert!(out.contains("let__pocketflow_flow:AsyncFlow=asyncmove{AsyncFlow::new()}.await;"), "{out}");
    }

    #[test]
    fn generics_attributes_and_visibility_are_kept() {
        let item = "#[inline] pub(crate) fn f<S: Send>(x: u8) -> Flow<S> where S: Sync { Flow::new() }";
        let out = compact(&expand_str("", item).unwrap());
        assert!(out.starts_with("#[inline]pub(crate)fnf<S:Send>(x:u8)->Flow<S>whereS:Sync{"), "{out}");
    }

    #[test]
    fn impl_trait_return_types_are_left_to_inference() {
        let out = compact(&expand_str("", "fn f() -> impl TraceFlow { Flow::new() }").unwrap());
        assert!(out.contains("let__pocketflow_flow=(move||{Flow::new()})();"), "{out}");
    }

    #[test]
    fn the_function_must_return_something() {
        let (message, at) = error("", "fn data_flow(x: u8) { }");
        assert_eq!(
            message,
            "`#[trace_flow]` goes on a function that returns a flow; add its return type, like `-> Flow`"
        );
        assert_eq!(at, "(x: u8)");
    }

    #[test]
    fn not_on_other_items_or_const_fns() {
        let (message, at) = error("", "struct Flow;");
        assert_eq!(message, "`#[trace_flow]` goes on a function that builds and returns a flow");
        assert_eq!(at, "struct Flow;");
        assert_eq!(
            error("", "const fn f() -> Flow { Flow::new() }"),
            ("`#[trace_flow]` can't go on a `const fn`".into(), "const".into())
        );
    }

    #[test]
    fn a_name_must_be_derivable() {
        let (message, at) = error("", "fn __() -> Flow { Flow::new() }");
        assert_eq!(message, "no flow name can be made from `__`; give one with `flow_name = \"...\"`");
        assert_eq!(at, "__");
        assert!(expand_str(r#"flow_name = "Named""#, "fn __() -> Flow { Flow::new() }").is_ok());
    }

    #[test]
    fn errors_come_with_the_item_unchanged() {
        let item = "fn f() -> Flow { Flow::new() }";
        let out = trace_flow("level = 1".parse().unwrap(), item.parse().unwrap()).to_string();
        assert!(out.starts_with(":: core :: compile_error !"), "{out}");
        assert!(out.ends_with(&item.parse::<TokenStream>().unwrap().to_string()), "{out}");
    }
}
