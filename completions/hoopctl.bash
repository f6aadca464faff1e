# bash completion for hoopctl                              -*- shell-script -*-
# Completes verbs and flags only; it never contacts the server (request ids
# are not guessed, and completion must not need a token).

_hoopctl() {
    local cur prev words cword
    _init_completion || return

    local verbs="list show approve deny cancel whoami"
    local common="--server --ca --help"

    local verb="" i
    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in
            list | show | approve | deny | cancel | whoami)
                verb=${words[i]}
                break
                ;;
        esac
    done

    case $prev in
        --server)
            COMPREPLY=($(compgen -W "https://" -- "$cur"))
            compopt -o nospace
            return
            ;;
        --ca)
            _filedir '@(pem|crt|cer)'
            return
            ;;
        --state | -s)
            COMPREPLY=($(compgen -W "pending approved denied cancelled expired" -- "$cur"))
            return
            ;;
        -m | --message | -n | --limit)
            return
            ;;
    esac

    if [[ -z $verb ]]; then
        COMPREPLY=($(compgen -W "$verbs --help --version" -- "$cur"))
        return
    fi

    local flags=$common
    case $verb in
        list) flags+=" --all --state --limit --json" ;;
        show | whoami) flags+=" --json" ;;
        approve | deny) flags+=" --message" ;;
    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$flags" -- "$cur"))
    fi
} &&
    complete -F _hoopctl hoopctl

# ex: filetype=sh
